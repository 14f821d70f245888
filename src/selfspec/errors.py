"""Public exceptions. Every failure a user can cause is one of these, and its message names
the stage, the file and the line (or the params key) so the fix is obvious."""

from __future__ import annotations


class SelfspecError(Exception):
    """Base class of all selfspec errors; the CLI prints these without a traceback."""


class ConfigError(SelfspecError):
    """A params file has an unknown key, a wrong type or an out-of-range value."""


class DataError(SelfspecError):
    """A data file (seeds, corpus, records) has a malformed line.

    Message form: ``FILE:LINE: FIELD: what is wrong``.
    """

    def __init__(self, path: object, line: int | None, message: str, field: str | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        what = f"{field}: {message}" if field else message
        super().__init__(f"{where}: {what}")
        self.path, self.line, self.field = str(path), line, field


class SourceUnavailableError(SelfspecError):
    """A model, corpus or data set could not be fetched (offline, no mirror copy, bad checksum)."""


class BackendError(SelfspecError):
    """A backend (generator, retriever, tracking server) failed or is not installed."""


class NotWritableError(SelfspecError):
    """An output file or folder cannot be written (permissions, a file in the way, read-only disk)."""


class Interrupted(SystemExit):
    """A termination signal (SIGTERM, SIGHUP) arrived: unwind, end the MLflow run as KILLED, exit 128+N."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


class StageError(SelfspecError):
    """A stage cannot produce a valid output (e.g. it would write an empty data set)."""

    def __init__(self, stage: str, message: str):
        super().__init__(f"[{stage}] {message}")
        self.stage = stage


def missing_extra(package: str, extra: str | None = None) -> BackendError:
    """Error for a lazily imported optional dependency that is not installed."""
    hint = f"pip install 'selfspec[{extra}]'" if extra else f"pip install {package}"
    return BackendError(f"the optional dependency {package!r} is not installed: {hint}")
