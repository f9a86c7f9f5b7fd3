"""Model backends by name: what loads a model into a :class:`~riskaudit.models.base.LoadedModel`.

``transformers`` (the default, :mod:`riskaudit.models.loading`) is built in. Another backend (vLLM for
generation on GPUs, an inference server, a test double) is a callable ``loader(source, revision, options,
name)`` registered with :func:`register_backend`, or declared by an installed package in the entry-point
group ``riskaudit.model_backends`` (name = backend name, object = the loader), and chosen with
``LoadOptions.backend``. Probes see only the :class:`~riskaudit.models.base.ModelHandle` protocol, so a
backend plugs in without touching one.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from riskaudit.errors import ModelLoadError
from riskaudit.models.base import DEFAULT_BACKEND, LoadedModel, LoadOptions

BackendLoader = Callable[[str, str | None, LoadOptions, str | None], LoadedModel]
ENTRY_POINT_GROUP = "riskaudit.model_backends"


def _transformers(source: str, revision: str | None, options: LoadOptions, name: str | None) -> LoadedModel:
    from riskaudit.models.loading import load_model  # torch/transformers: imported only when loading

    return load_model(source, revision, options, name)


_BACKENDS: dict[str, BackendLoader] = {DEFAULT_BACKEND: _transformers}


def register_backend(name: str, loader: BackendLoader, *, replace: bool = False) -> None:
    """Make ``loader`` the backend called ``name``; an existing name is an error unless ``replace``."""
    if not name or not name.strip() or name != name.strip():
        raise ValueError(f"backend name must be a non-empty string without surrounding spaces, got {name!r}")
    if name in _BACKENDS and not replace and _BACKENDS[name] is not loader:
        raise ValueError(f"model backend {name!r} is already registered")
    _BACKENDS[name] = loader


def unregister_backend(name: str) -> None:
    """Remove a registered backend (the default cannot be removed)."""
    if name == DEFAULT_BACKEND:
        raise ValueError(f"the default backend {DEFAULT_BACKEND!r} cannot be removed")
    _BACKENDS.pop(name, None)


def _from_entry_points(name: str) -> BackendLoader | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                loader = ep.load()
            except Exception as exc:
                raise ModelLoadError(
                    f"model backend {name!r} ({ep.value}) cannot be imported: {type(exc).__name__}: {exc}"
                ) from None
            if not callable(loader):
                raise ModelLoadError(f"model backend {name!r} ({ep.value}) is not callable")
            register_backend(name, loader)
            return loader  # type: ignore[no-any-return]
    return None


def backend_names() -> tuple[str, ...]:
    """Registered backends and those declared in the entry-point group, sorted (the default first)."""
    declared = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    rest = sorted((set(_BACKENDS) | declared) - {DEFAULT_BACKEND})
    return (DEFAULT_BACKEND, *rest)


def get_backend(name: str) -> BackendLoader:
    """The loader of backend ``name``; an unknown name is a one-line :class:`ModelLoadError` naming the known."""
    loader = _BACKENDS.get(name) or _from_entry_points(name)
    if loader is None:
        raise ModelLoadError(f"unknown model backend {name!r}; registered backends: {', '.join(backend_names())}")
    return loader


def load_with_backend(source: str, revision: str | None, options: LoadOptions, name: str | None = None) -> LoadedModel:
    """Load with the backend ``options.backend`` names."""
    return get_backend(options.backend)(source, revision, options, name)
