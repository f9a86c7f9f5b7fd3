"""Probe-file discovery and validation: the built-in definitions (top-level ``probes/``, shipped as
``riskaudit.probe_data``) plus the user's ``--probe-dir`` directories.

Every ``*.yaml`` / ``*.yml`` file is one probe definition with a top-level ``kind``. The bias kinds
(``pronoun``, ``coreference``, ``minimal_pairs``, ``free_generation``) and ``memorization`` are validated
and loaded here (:func:`load_probes`); the canonical benchmark kinds (:data:`BENCHMARK_KINDS`: ``crows_pairs``,
``winogender``, ``winobias``, ``bbq``) load only when their official files are found
(:func:`load_benchmark_probes`; the others are "not audited"); the memorization suite needs the scan's data
(:class:`~riskaudit.probes.memorization.MemorizationInputs`) and is left out when there is none. A user
memorization file replaces the built-in one (one suite per scan: it is the costly probe).

Installed packages add kinds through the entry-point group ``riskaudit.probe_kinds``: the entry point's
name is the kind, its object a :class:`ProbeKind` (a spec model and a ``from_spec`` factory); such a kind is
validated and loaded like a built-in bias kind, and imported only when a file of that kind is met. Any other
kind is *not* an error: it is listed with ``handled=False`` (:func:`unhandled_probe_files`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from riskaudit.errors import ProbeError
from riskaudit.inputs.benchmark_data import BenchmarkDataMissing, NotAudited
from riskaudit.inputs.occupations import Table
from riskaudit.probes.base import Probe
from riskaudit.probes.bench_bbq import BBQProbe, BBQSpec
from riskaudit.probes.bench_crows_pairs import CrowsPairsProbe, CrowsPairsSpec
from riskaudit.probes.bench_winobias import WinoBiasProbe, WinoBiasSpec
from riskaudit.probes.bench_winogender import WinogenderProbe, WinogenderSpec
from riskaudit.probes.benchmark import BenchmarkFactory
from riskaudit.probes.coref import CoreferenceProbe, CoreferenceSpec
from riskaudit.probes.generation import FreeGenerationProbe, FreeGenerationSpec
from riskaudit.probes.mem_spec import MemorizationSpec, parse_memorization_spec
from riskaudit.probes.memorization import MemorizationInputs, MemorizationProbe
from riskaudit.probes.minimal_pairs import MinimalPairsProbe, MinimalPairsSpec
from riskaudit.probes.pronoun import PronounProbe
from riskaudit.probes.spec import PronounProbeSpec, SpecBase, parse_spec, read_yaml
from riskaudit.resources import probe_data_dir

_SUFFIXES = (".yaml", ".yml")


def _pronoun(spec: SpecBase, table: Table | None) -> Probe:
    assert isinstance(spec, PronounProbeSpec)
    return PronounProbe.from_spec(spec, table)


def _coref(spec: SpecBase, table: Table | None) -> Probe:
    assert isinstance(spec, CoreferenceSpec)
    return CoreferenceProbe.from_spec(spec, table)


def _pairs(spec: SpecBase, table: Table | None) -> Probe:
    assert isinstance(spec, MinimalPairsSpec)
    return MinimalPairsProbe.from_spec(spec, table)


def _generation(spec: SpecBase, table: Table | None) -> Probe:
    assert isinstance(spec, FreeGenerationSpec)
    return FreeGenerationProbe.from_spec(spec, table)


# kind -> (spec model, probe factory)
BIAS_KINDS: dict[str, tuple[type[SpecBase], Callable[[SpecBase, Table | None], Probe]]] = {
    "pronoun": (PronounProbeSpec, _pronoun),
    "coreference": (CoreferenceSpec, _coref),
    "minimal_pairs": (MinimalPairsSpec, _pairs),
    "free_generation": (FreeGenerationSpec, _generation),
}


# Canonical benchmarks over their official files: kind -> (spec model, factory(spec, YAML dir, --benchmark-data roots))
BENCHMARK_KINDS: dict[str, tuple[type[SpecBase], BenchmarkFactory]] = {
    "crows_pairs": (CrowsPairsSpec, CrowsPairsProbe.from_spec),
    "winogender": (WinogenderSpec, WinogenderProbe.from_spec),
    "winobias": (WinoBiasSpec, WinoBiasProbe.from_spec),
    "bbq": (BBQSpec, BBQProbe.from_spec),
}

MEMORIZATION_KIND = "memorization"
ENTRY_POINT_GROUP = "riskaudit.probe_kinds"

KindEntry = tuple[type[SpecBase], Callable[[SpecBase, Table | None], Probe]]


class ProbeKind(Protocol):
    """What an entry point of ``riskaudit.probe_kinds`` names (usually the probe class itself): the pydantic
    model of its YAML (a :class:`~riskaudit.probes.spec.SpecBase` with ``kind: Literal["<name>"]``) and the
    factory of a runnable probe from a validated spec and the ``--occupation-table`` override."""

    spec_model: type[SpecBase]

    def from_spec(self, spec: Any, table: Table | None, /) -> Probe: ...


def _declared() -> dict[str, EntryPoint]:
    """The kinds installed packages declare (first declaration of a name wins), built-in names refused."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BIAS_KINDS or ep.name in BENCHMARK_KINDS or ep.name == MEMORIZATION_KIND:
            raise ProbeError(
                f"entry point {ep.name} = {ep.value} in group {ENTRY_POINT_GROUP}: "
                f"{ep.name!r} is a built-in probe kind; give the plug-in kind another name"
            )
        found.setdefault(ep.name, ep)
    return found


def _plugin_kind(ep: EntryPoint, source: str) -> KindEntry:
    """Import a declared kind and check its shape; any problem is one line naming the file and the plug-in."""
    where = f"{source}: kind: probe kind {ep.name!r} ({ep.value}, entry point group {ENTRY_POINT_GROUP})"
    try:
        obj = ep.load()
    except Exception as exc:
        raise ProbeError(f"{where} cannot be imported: {type(exc).__name__}: {exc}") from None
    spec_model = getattr(obj, "spec_model", None)
    factory = getattr(obj, "from_spec", None)
    if not (isinstance(spec_model, type) and issubclass(spec_model, SpecBase)) or not callable(factory):
        raise ProbeError(
            f"{where} is not a probe kind: it needs a spec_model (a SpecBase subclass) and a from_spec(spec, table)"
        )
    return spec_model, factory


def _known_kinds(declared: dict[str, EntryPoint], kind: str, source: str) -> KindEntry | None:
    """The spec model and factory of a bias or plug-in kind; None for memorization and unknown kinds."""
    if kind in BIAS_KINDS:
        return BIAS_KINDS[kind]
    if kind in declared:
        return _plugin_kind(declared[kind], source)
    return None


class ProbeInfo(BaseModel):
    """One probe definition file: what it is and whether this registry handles its kind."""

    model_config = ConfigDict(frozen=True)

    path: Path
    id: str
    kind: str
    version: int | None = None
    description: str = ""
    builtin: bool = False
    handled: bool  # a bias, memorization or plug-in kind, validated in full (and loadable)
    content_hash: str | None = None  # sha256 of the canonical spec (handled kinds only)
    n_templates: int | None = None  # templates / prompts (handled kinds only)


def _n_templates(spec: SpecBase) -> int | None:
    for attr in ("templates", "prompts"):
        value = getattr(spec, attr, None)
        if isinstance(value, list):
            return len(value)
    return None


def _head(data: Any, source: str) -> tuple[str, str]:
    """The ``id`` and ``kind`` of any probe file, checked just enough to list or route it (the full checks
    of a bias kind follow in its spec model; other kinds are checked by their own module)."""
    if not isinstance(data, dict):
        raise ProbeError(f"{source}: (top level): expected a mapping, got {type(data).__name__}")
    for key in ("kind", "id"):
        if key not in data:
            raise ProbeError(f"{source}: {key}: Field required")
        if not isinstance(data[key], str) or not data[key].strip():
            raise ProbeError(f"{source}: {key}: expected a non-empty string")
    return data["id"], data["kind"]


def _handled_info(
    path: Path, kind: str, spec: SpecBase | MemorizationSpec, builtin: bool, n_templates: int | None = None
) -> ProbeInfo:
    """The listing of a file whose kind this registry validated in full (bias, benchmark, memorization, plug-in)."""
    return ProbeInfo(
        path=path,
        id=spec.id,
        kind=kind,
        version=spec.version,
        description=" ".join(spec.description.split()),
        builtin=builtin,
        handled=True,
        content_hash=spec.content_hash(),
        n_templates=n_templates,
    )


def _info(
    path: Path, builtin: bool, declared: dict[str, EntryPoint]
) -> tuple[ProbeInfo, SpecBase | MemorizationSpec | None, KindEntry | None]:
    source = str(path)
    data = read_yaml(path)
    probe_id, kind = _head(data, source)
    if kind == MEMORIZATION_KIND:
        mem = parse_memorization_spec(data, source)
        return _handled_info(path, kind, mem, builtin), mem, None
    if kind in BENCHMARK_KINDS:
        bench = parse_spec(BENCHMARK_KINDS[kind][0], data, source)
        return _handled_info(path, kind, bench, builtin), bench, None
    entry = _known_kinds(declared, kind, source)
    if entry is None:
        version = data.get("version")
        description = data.get("description")
        info = ProbeInfo(
            path=path,
            id=probe_id,
            kind=kind,
            version=version if isinstance(version, int) and not isinstance(version, bool) else None,
            description=" ".join(description.split()) if isinstance(description, str) else "",
            builtin=builtin,
            handled=False,
        )
        return info, None, None
    spec = parse_spec(entry[0], data, source)
    return _handled_info(path, kind, spec, builtin, _n_templates(spec)), spec, entry


def validate_probe_file(path: str | Path) -> ProbeInfo:
    """Validate one probe file. A known kind is validated in full; another kind only for ``id`` and ``kind``
    (``handled=False``: its own module must validate the rest). Problems raise a one-line ProbeError naming
    the file, the field and the problem."""
    p = Path(path)
    if not p.is_file():
        raise ProbeError(f"{p}: no such probe file")
    return _info(p, _is_builtin(p), _declared())[0]


def _is_builtin(path: Path) -> bool:
    try:
        return path.resolve().parent == probe_data_dir().resolve()
    except OSError:
        return False


def probe_files(probe_dirs: Iterable[str | Path] = ()) -> list[tuple[Path, bool]]:
    """(file, is built-in) for the built-in directory, then each user directory, files sorted by name."""
    dirs: list[tuple[Path, bool]] = [(probe_data_dir(), True)]
    for d in probe_dirs:
        p = Path(d).expanduser()
        if not p.is_dir():
            raise ProbeError(f"probe directory {p} does not exist or is not a directory")
        dirs.append((p, False))
    out: list[tuple[Path, bool]] = []
    seen: set[Path] = set()
    for d, builtin in dirs:
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in _SUFFIXES and f.is_file() and f.resolve() not in seen:
                seen.add(f.resolve())
                out.append((f, builtin))
    return out


def _discover(
    probe_dirs: Iterable[str | Path],
) -> list[tuple[ProbeInfo, SpecBase | MemorizationSpec | None, KindEntry | None]]:
    """Built-in files first (bias kinds in the order of BIAS_KINDS, benchmark kinds, then other kinds), then user
    files."""
    rank = {kind: i for i, kind in enumerate((*BIAS_KINDS, *BENCHMARK_KINDS))}
    declared = _declared()
    found = sorted(
        (_info(f, builtin, declared) for f, builtin in probe_files(probe_dirs)),
        key=lambda pair: (not pair[0].builtin, rank.get(pair[0].kind, len(rank))),
    )
    first: dict[str, Path] = {}
    for info, _, _ in found:
        if info.id in first:
            raise ProbeError(f"{info.path}: id: probe id {info.id!r} is already defined in {first[info.id]}")
        first[info.id] = info.path
    return found


def list_probe_files(probe_dirs: Iterable[str | Path] = ()) -> list[ProbeInfo]:
    """Every probe file (built-in first, then ``probe_dirs``), validated; duplicate ids are an error."""
    return [info for info, _, _ in _discover(probe_dirs)]


def unhandled_probe_files(probe_dirs: Iterable[str | Path] = ()) -> list[ProbeInfo]:
    """The probe files of a kind this registry does not know, for the caller to route."""
    return [info for info in list_probe_files(probe_dirs) if not info.handled]


def load_bias_probes(probe_dirs: Iterable[str | Path] = (), occupation_table: Table | None = None) -> list[Probe]:
    """Runnable probes for every bias-kind and plug-in-kind file (built-in first, then ``probe_dirs``).

    ``occupation_table`` (``bls2015`` / ``bls2022``) overrides each file's ``settings.occupation_table``;
    occupations without a figure in the chosen table are skipped with a note in each probe's result.
    Files of other kinds are skipped here (see :func:`unhandled_probe_files`).
    """
    if occupation_table is not None and occupation_table not in ("bls2015", "bls2022"):
        raise ProbeError(f"unknown occupation table {occupation_table!r} (known: bls2015, bls2022)")
    return [
        entry[1](spec, occupation_table)
        for _, spec, entry in _discover(probe_dirs)
        if isinstance(spec, SpecBase) and entry is not None
    ]


def load_benchmark_probes(
    probe_dirs: Iterable[str | Path] = (), roots: Sequence[Path] = ()
) -> tuple[list[Probe], list[NotAudited]]:
    """Runnable probes for every benchmark-kind file whose official data is found (its YAML's ``data:``, else
    the ``--benchmark-data`` ``roots``), and a :class:`NotAudited` for each whose data is not; a malformed data
    file raises its one-line BenchmarkFileError."""
    probes: list[Probe] = []
    missing: list[NotAudited] = []
    for info, spec, _ in _discover(probe_dirs):
        if info.kind in BENCHMARK_KINDS and isinstance(spec, SpecBase):
            try:
                probes.append(BENCHMARK_KINDS[info.kind][1](spec, info.path.parent, roots))
            except BenchmarkDataMissing as exc:
                missing.append(exc.not_audited)
    return probes, missing


def load_probes(
    probe_dirs: Iterable[str | Path] = (),
    occupation_table: Table | None = None,
    memorization: MemorizationInputs | None = None,
    benchmark_data: Sequence[Path] | None = None,
    not_audited: list[NotAudited] | None = None,
) -> list[Probe]:
    """Every runnable probe: the bias probes (:func:`load_bias_probes`), with ``benchmark_data`` (the
    ``--benchmark-data`` roots, possibly none) the benchmark probes whose data is found (those whose data is
    not are appended to ``not_audited``), then the memorization suite on
    ``memorization``'s data — from the last user memorization file, else the built-in one — unless there is
    no data (no declared training data, no ``--data``, no ``--canaries``) or memorization is off."""
    dirs = list(probe_dirs)
    probes = load_bias_probes(dirs, occupation_table)
    if benchmark_data is not None:
        found, missing = load_benchmark_probes(dirs, benchmark_data)
        probes += found
        if not_audited is not None:
            not_audited += missing
    if memorization is None:
        return probes
    mem = [(info, spec) for info, spec, _ in _discover(dirs) if isinstance(spec, MemorizationSpec)]
    user = [pair for pair in mem if not pair[0].builtin]
    if mem:
        probe = MemorizationProbe.for_inputs((user or mem)[-1][1], memorization)
        if probe is not None:
            probes.append(probe)
    return probes


def bias_kinds() -> Sequence[str]:
    """The built-in bias kinds this registry validates and loads."""
    return tuple(BIAS_KINDS)


def probe_kinds() -> Sequence[str]:
    """Every kind this registry validates: the bias kinds, memorization, then the installed plug-in kinds
    (entry-point group ``riskaudit.probe_kinds``, sorted; not imported here)."""
    return (*BIAS_KINDS, *BENCHMARK_KINDS, MEMORIZATION_KIND, *sorted(_declared()))
