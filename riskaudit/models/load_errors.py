"""Why a model failed to load, in one line with a fix: the loading stages' exceptions classified."""

from __future__ import annotations

from collections.abc import Iterator

from riskaudit.models.base import LoadOptions


class StageError(Exception):
    """A loading stage ('config', 'tokenizer', 'model', 'weights') failed with ``cause``."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(stage)
        self.stage = stage
        self.cause = cause


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def is_not_cached(exc: BaseException) -> bool:
    """True when a local-files-only attempt failed only because files are not in the HF cache."""
    for e in _chain(exc):
        cls = type(e).__name__
        if cls in ("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
            return True
        msg = str(e)
        if "couldn't find them in the cached files" in msg or "local_files_only" in msg:
            return True
    return False


def explain(err: StageError, options: LoadOptions, revision: str | None, *, is_local: bool) -> str:
    """One line: what went wrong and how to fix it."""
    exc = err.cause
    names = {type(e).__name__ for e in _chain(exc)}
    text = " ".join(str(e) for e in _chain(exc))
    low = text.lower()
    if "GatedRepoError" in names:
        return "the repository is gated; accept its license on the Hugging Face Hub and log in (hf auth login)"
    if "RevisionNotFoundError" in names or "not a valid git identifier" in low:
        return f"revision {revision!r} does not exist in the repository; check the revision name"
    if "RepositoryNotFoundError" in names or "is not a local folder and is not a valid model identifier" in low:
        return (
            "no such model repository on the Hugging Face Hub (or it is private: log in with hf auth login); "
            "check the hub id, or use a local path in a family TOML"
        )
    if names & {
        "LocalEntryNotFoundError",
        "OfflineModeIsEnabled",
        "ConnectError",
        "ConnectionError",
        "ConnectTimeout",
    }:
        return (
            "no network access to the Hugging Face Hub and it is not in the local HF cache; provide it with "
            "hub access, a pre-filled HF cache (HF_HOME), or a local path in a family TOML"
        )
    if "trust_remote_code" in text or "trust-remote-code" in low:
        return (
            "the model needs its repository's own Python code; pass --trust-remote-code if you trust it"
            if not options.trust_remote_code
            else f"its repository code failed: {one_line(exc)}"
        )
    if err.stage == "config":
        if "model_type" in text or "Unrecognized model" in text:
            return f"unsupported or unknown architecture in config.json ({one_line(exc)}); upgrade transformers"
        return f"config.json is missing or broken: {one_line(exc)}"
    if err.stage == "tokenizer":
        return f"the tokenizer is missing or broken ({one_line(exc)}); save a working tokenizer with the model"
    if "SafetensorError" in names or ("safetensors" in low and ("header" in low or "deserializ" in low)):
        return f"the safetensors weights are corrupt or truncated ({one_line(exc)}); re-download or re-save them"
    if not options.allow_pickle and ("safetensors" in low and ("no file named" in low or "does not appear" in low)):
        return (
            "it has no safetensors weights, only pickled ones (pytorch_model.bin), which can run "
            "arbitrary code when loaded; pass --allow-pickle if you trust them"
        )
    if "out of memory" in low:
        return f"out of memory while loading ({one_line(exc)}); use a smaller dtype or another device"
    return one_line(exc)


def one_line(exc: BaseException, limit: int = 240) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if len(msg) > limit:
        msg = msg[: limit - 3] + "..."
    return msg
