"""One error hierarchy for mlscale.

Every error a user can cause by what they type or the files they pass is an
:class:`MlscaleError`. The command line prints its message (never a traceback)
and exits with :attr:`MlscaleError.exit_code`; the server maps
:attr:`MlscaleError.http_status` to its answer. The message says what was wrong
and, where there is one, the fix.

>>> err = DataFormatError("expected 3 columns, found 1", path="u.data", line=7)
>>> str(err)
'u.data, line 7: expected 3 columns, found 1'
>>> isinstance(err, MlscaleError), err.exit_code
(True, 65)
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DataError",
    "DataFormatError",
    "DatasetNotFoundError",
    "DependencyError",
    "EngineError",
    "MlscaleError",
    "ModelNotFoundError",
    "RegistryError",
    "UnreachableError",
    "ValidationError",
    "WriteError",
]


class MlscaleError(Exception):
    """Base class of every error mlscale raises on purpose."""

    #: Process exit status used by the command line (sysexits.h style).
    exit_code: int = 1
    #: HTTP status used by the server when the error reaches a client.
    http_status: int = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  hint: {self.hint}"


class ConfigError(MlscaleError):
    """A setting (environment variable, flag, config file) is invalid."""

    exit_code = 78
    http_status = 400


class ValidationError(MlscaleError):
    """An argument has the wrong type or is out of range; names the field."""

    exit_code = 64
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message, hint=hint)
        self.field = field


class DataError(MlscaleError):
    """Input data is missing, empty or unusable."""

    exit_code = 65
    http_status = 400


class WriteError(DataError):
    """The system refused to write output (disk full, read-only, no permission); names the path.

    Exits like any other refused read or write at the command line (``EX_IOERR``): the input
    was fine, the place to put the output was not.
    """

    exit_code = 74
    http_status = 500


class DataFormatError(DataError):
    """A data file is malformed; carries the file and, when known, the line."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = ", ".join(p for p in (path, f"line {line}" if line is not None else None) if p)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.path = path
        self.line = line
        self.reason = message


class DatasetNotFoundError(DataError):
    """A catalogue data set is unknown or its files are not on disk."""

    exit_code = 66
    http_status = 404


class RegistryError(MlscaleError):
    """The model registry cannot do what was asked (bad name, conflict...)."""

    exit_code = 73
    http_status = 400


class ModelNotFoundError(RegistryError):
    """No model, version or alias of that name."""

    exit_code = 66
    http_status = 404


class ArtifactError(RegistryError):
    """A stored artifact is corrupt, tampered with, or in a refused format."""

    exit_code = 65
    http_status = 500


class EngineError(MlscaleError):
    """A training engine failed; carries the root cause, not a JVM dump."""

    exit_code = 70


class DependencyError(MlscaleError):
    """An optional dependency or system tool is missing; says how to install it."""

    exit_code = 69


class UnreachableError(MlscaleError):
    """A server or URL the user named cannot be reached."""

    exit_code = 69
    http_status = 502
