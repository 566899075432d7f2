"""Every error Runyard raises on purpose, with its HTTP status and stable code.

    RunyardError                 500 internal
    ├── InvalidInput             400 invalid_input        (names the field and the rule)
    │   └── PayloadTooLarge      413 payload_too_large    (names the limit)
    ├── Unauthorized             401 unauthorized
    ├── Forbidden                403 forbidden
    ├── NotFound                 404 not_found
    ├── AlreadyExists            409 already_exists
    ├── TooManyAttempts          429 too_many_attempts    (failed sign-ins; says when to retry)
    ├── SchemaOutdated           503 schema_outdated      (names the command that fixes it)
    ├── StoreUnavailable         503 store_unavailable
    ├── SlurmError               502 slurm_error          (a Slurm command failed, timed out or is missing)
    │   └── SubmitFailed         502 submit_failed        (sbatch refused the job: its message)
    ├── NoExecutor               503 no_executor          (this server launches no jobs)
    └── ServerUnreachable        503 server_unreachable   (client side: network down, retry later)

The server renders every one of these as the same JSON body (see ``to_dict``)::

    {"error": {"code": "not_found", "message": "run 'abc' not found", "field": null}}

and the client rebuilds the same exception from that body with ``from_dict``, so a script
sees ``runyard.errors.NotFound`` whether it talks to a local store or a remote server.
This module is imported by the client: keep it stdlib-only.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "Forbidden",
    "InvalidInput",
    "NoExecutor",
    "NotFound",
    "PayloadTooLarge",
    "RunyardError",
    "SchemaOutdated",
    "ServerUnreachable",
    "SlurmError",
    "StoreUnavailable",
    "SubmitFailed",
    "TooManyAttempts",
    "Unauthorized",
    "error_for_code",
]


class RunyardError(Exception):
    """Base of every deliberate Runyard error."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The one JSON error body, ``{"error": {"code", "message", "field"}}``."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}

    @staticmethod
    def from_dict(body: Any, status: int = 500) -> RunyardError:
        """Rebuild the exception a server sent; unknown shapes become a plain RunyardError."""
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return RunyardError(f"server answered HTTP {status} with an unexpected body")
        cls = error_for_code(str(err.get("code", "")), status)
        field = err.get("field")
        return cls(str(err.get("message", "")), field=field if isinstance(field, str) else None)


class InvalidInput(RunyardError):
    status = 400
    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"


class Unauthorized(RunyardError):
    status = 401
    code = "unauthorized"


class Forbidden(RunyardError):
    status = 403
    code = "forbidden"


class NotFound(RunyardError):
    status = 404
    code = "not_found"


class AlreadyExists(RunyardError):
    status = 409
    code = "already_exists"


class TooManyAttempts(RunyardError):
    status = 429
    code = "too_many_attempts"


class SchemaOutdated(RunyardError):
    status = 503
    code = "schema_outdated"


class StoreUnavailable(RunyardError):
    status = 503
    code = "store_unavailable"


class ServerUnreachable(RunyardError):
    status = 503
    code = "server_unreachable"


class SlurmError(RunyardError):
    status = 502
    code = "slurm_error"


class SubmitFailed(SlurmError):
    code = "submit_failed"


class NoExecutor(RunyardError):
    status = 503
    code = "no_executor"


_BY_CODE: dict[str, type[RunyardError]] = {
    cls.code: cls
    for cls in (
        RunyardError,
        InvalidInput,
        PayloadTooLarge,
        Unauthorized,
        Forbidden,
        NotFound,
        AlreadyExists,
        TooManyAttempts,
        SchemaOutdated,
        StoreUnavailable,
        ServerUnreachable,
        SlurmError,
        SubmitFailed,
    )
}
_BY_STATUS: dict[int, type[RunyardError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: AlreadyExists,
    413: PayloadTooLarge,
    429: TooManyAttempts,
    422: InvalidInput,
}


def error_for_code(code: str, status: int = 500) -> type[RunyardError]:
    """The exception class for a wire code, falling back on the HTTP status."""
    return _BY_CODE.get(code) or _BY_STATUS.get(status, RunyardError)
