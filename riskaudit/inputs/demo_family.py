"""The ``demo`` family, read lazily from the shipped manifest ``riskaudit/zoo/demo/manifest.json`` (built by
``riskaudit zoo build``), with its checkpoints as revisions and its own corpus as declared training data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from riskaudit import resources
from riskaudit.errors import FamilyError
from riskaudit.inputs.family_spec import Family, ModelSpec, condense
from riskaudit.inputs.revisions import normalise_revisions, revision_sort_key
from riskaudit.inputs.training_data import DEMO_DATASET, TrainingData

__all__ = ["DEMO_FAMILY", "demo_family"]

DEMO_FAMILY = "demo"


def demo_family(revisions: Sequence[str] | None = None, demo_dir: Path | None = None) -> Family:
    """The demo family from ``<demo_dir>/manifest.json`` (default: the shipped demo directory).

    With ``revisions``, members that have checkpoints are expanded (``main`` = final weights); the
    others stay at their final weights.
    """
    from riskaudit.inputs.zoo_manifest import DemoManifest  # lazy: the zoo is optional at import time

    root = (demo_dir or resources.demo_dir()).resolve()
    path = root / "manifest.json"
    if not path.is_file():
        raise FamilyError("the demo family is not built: run `riskaudit zoo build`")
    try:
        manifest = DemoManifest.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise FamilyError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise FamilyError(f"{path}: malformed demo manifest: {condense(exc, {})}") from exc

    wanted = normalise_revisions(revisions or [])
    available = {c.revision for m in manifest.members for c in m.checkpoints}
    unknown = [r for r in wanted if r != "main" and r not in available]
    if unknown:
        choices = ", ".join([*sorted(available, key=revision_sort_key), "main"])
        raise FamilyError(f"demo has no checkpoint {unknown[0]!r}; available revisions: {choices}")

    ref = str(path)
    specs: list[ModelSpec] = []
    for m in sorted(manifest.members, key=lambda m: m.params_total):
        base = ModelSpec(
            family=DEMO_FAMILY,
            name=m.name,
            source=str(root / m.path),
            params_total=m.params_total,
            params_nonembedding=m.params_nonembedding,
            train_tokens=float(m.train_tokens),
            notes=f"d_model={m.d_model}, n_layers={m.n_layers}, n_heads={m.n_heads}, lr={m.lr:g}, "
            f"final_loss={m.final_loss:.4g}"
            + (f"; checkpoints: {', '.join(c.revision for c in m.checkpoints)}" if m.checkpoints else ""),
            source_ref=ref,
        )
        if not wanted or not m.checkpoints:
            specs.append(base)
            continue
        by_rev = {c.revision: c for c in m.checkpoints}
        expanded: list[ModelSpec] = []
        for rev in wanted:
            if rev == "main":  # the final weights: the member itself (same name, same store units)
                expanded.append(base)
            elif rev in by_rev:
                c = by_rev[rev]
                expanded.append(
                    base.model_copy(
                        update={
                            "name": f"{m.name}@{c.revision}",
                            "source": str(root / c.path),
                            "revision": c.revision,
                            "step": c.step,
                            "train_tokens": float(c.train_tokens),
                            "notes": f"checkpoint of {m.name} at step {c.step} ({c.train_tokens:,} tokens seen); "
                            f"d_model={m.d_model}, n_layers={m.n_layers}, n_heads={m.n_heads}; "
                            "training loss not recorded at checkpoints",
                        }
                    )
                )
        specs.extend(sorted(expanded, key=lambda s: s.train_tokens or 0.0))
    return Family(
        name=DEMO_FAMILY,
        description=f"tiny GPT-NeoX family trained locally on a synthetic corpus (seed {manifest.seed}, "
        f"vocab {manifest.vocab_size})",
        members=specs,
        training_data=TrainingData(
            dataset=DEMO_DATASET,
            sampling="uniform",
            canaries=str(root / "canaries.jsonl"),
            reference="riskaudit/zoo/corpus.py (the demo corpus: stories, planted canaries, held-out stories)",
        ),
    )
