"""Vigil's exceptions and their one mapping to HTTP.

Services raise these; ``install_error_handlers`` turns them into JSON bodies a field
officer's app can show. Nothing else in the server builds an error response.

    VigilError
    ├── MalformedRequestError        400  a sync envelope that cannot be read at all
    ├── AuthenticationError          401  bad credentials, missing/expired/revoked token
    │   ├── DeviceRevokedError            the device was revoked: wipe it
    │   └── SignInRequiredError      303  a page needs a browser session: to /login
    ├── PermissionDeniedError        403  the role may not do this at all
    ├── NotFoundError                404  absent, or present but outside the caller's view
    ├── ConflictError                409
    │   ├── IdempotencyConflictError      same client id, different content
    │   ├── InvalidTransitionError        verification step not allowed from this state
    │   ├── InUseError                    still referenced (a unit with children, …)
    │   └── UploadOffsetMismatchError     a PATCH at the wrong offset (carries Upload-Offset)
    ├── GoneError                    410
    │   ├── CursorExpiredError            older than the horizon or another epoch: replace
    │   └── UploadExpiredError            an unfinished upload was discarded: restart at 0
    ├── PreconditionFailedError      412  the version the client edited is stale
    ├── PayloadTooLargeError         413
    ├── UnsupportedMediaTypeError    415
    │   └── UnsupportedContentEncodingError  a body coding not decoded (carries Accept-Encoding)
    ├── ValidationFailedError        422  domain validation, naming the field
    │                                     (and alerts.AlertError from the alert core: 422,
    │                                      AlertStateError 409)
    │   ├── IdempotencyKeyReusedError     the same Idempotency-Key with another body
    │   └── AttachmentHashMismatchError   the uploaded bytes do not hash to the manifest
    ├── ClientTooOldError            426  upgrade the app (its outbox is kept and still pushed)
    ├── PreconditionRequiredError    428  an update without If-Match or version
    ├── TooManyAttemptsError         429  login throttled; carries Retry-After
    └── ChecksumMismatchError        460  a chunk's Upload-Checksum does not match (tus)
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from alerts.errors import AlertError, AlertStateError, RuleError
from geo import InvalidCellError
from server.taxonomy.codes import UnknownCategoryError

log = logging.getLogger("vigil.errors")

__all__ = [
    "COMMON_ERROR_RESPONSES",
    "AttachmentHashMismatchError",
    "AuthenticationError",
    "ChecksumMismatchError",
    "ClientTooOldError",
    "ConflictError",
    "CursorExpiredError",
    "DeviceRevokedError",
    "ErrorBody",
    "FieldError",
    "GoneError",
    "IdempotencyConflictError",
    "IdempotencyKeyReusedError",
    "InUseError",
    "InvalidTransitionError",
    "MalformedRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "PreconditionRequiredError",
    "SignInRequiredError",
    "TooManyAttemptsError",
    "UnsupportedContentEncodingError",
    "UnsupportedMediaTypeError",
    "UploadExpiredError",
    "UploadOffsetMismatchError",
    "ValidationFailedError",
    "VigilError",
    "error_body",
    "install_error_handlers",
    "unexpected_error_response",
]


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class FieldErrorBody(BaseModel):
    field: str = Field(
        description="The field at fault, e.g. `location.coordinates` or `query:bbox`."
    )
    message: str


class ErrorBody(BaseModel):
    """Every error Vigil answers has this shape."""

    code: str = Field(description="Stable machine-readable code, e.g. `validation_failed`.")
    message: str = Field(description="A sentence a field officer's app can show as it is.")
    errors: list[FieldErrorBody] = Field(description="One entry per field at fault.")
    request_id: str | None = Field(description="Quote it when asking for help.")


#: The error responses every API route may give, for the OpenAPI document.
COMMON_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Not signed in, or the session is no longer valid"},
    403: {"model": ErrorBody, "description": "Your role may not do this"},
    404: {"model": ErrorBody, "description": "Absent, or not visible to you"},
    413: {"model": ErrorBody, "description": "Request body too large"},
    422: {"model": ErrorBody, "description": "Invalid input; `errors` names each field"},
    500: {"model": ErrorBody, "description": "Unexpected error; nothing was saved"},
    503: {"model": ErrorBody, "description": "Database unavailable; retry later"},
}


class VigilError(Exception):
    status_code = 500
    code = "error"
    #: The few errors that report a change the server made (an expired upload discarded): the
    #: request's transaction is committed before the error is answered, not rolled back.
    keeps_changes = False

    def __init__(self, message: str, *, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)

    def headers(self) -> dict[str, str]:
        return {}


class MalformedRequestError(VigilError):
    status_code = 400
    code = "malformed_request"

    @classmethod
    def on(cls, field: str, message: str) -> MalformedRequestError:
        return cls(f"{field}: {message}", errors=[FieldError(field, message)])


class AuthenticationError(VigilError):
    status_code = 401
    code = "not_authenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class DeviceRevokedError(AuthenticationError):
    """The device was revoked by an administrator: its app must wipe its local data."""

    code = "device_revoked"


class SignInRequiredError(AuthenticationError):
    """A page (not the API) was opened without a valid session: the browser is sent to the
    sign-in form, which brings it back to ``next_path``."""

    def __init__(self, message: str, *, next_path: str) -> None:
        super().__init__(message)
        self.next_path = next_path


class PermissionDeniedError(VigilError):
    status_code = 403
    code = "permission_denied"


class NotFoundError(VigilError):
    status_code = 404
    code = "not_found"


class ConflictError(VigilError):
    status_code = 409
    code = "conflict"


class IdempotencyConflictError(ConflictError):
    code = "id_reused_with_different_content"


class InvalidTransitionError(ConflictError):
    code = "invalid_transition"


class InUseError(ConflictError):
    code = "in_use"


class UploadOffsetMismatchError(ConflictError):
    code = "offset_mismatch"

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(message)
        self.offset = offset

    def headers(self) -> dict[str, str]:
        return {"Upload-Offset": str(self.offset)}


class GoneError(VigilError):
    status_code = 410
    code = "gone"


class CursorExpiredError(GoneError):
    code = "cursor_expired"


class UploadExpiredError(GoneError):
    code = "upload_expired"
    keeps_changes = True


class PreconditionFailedError(VigilError):
    status_code = 412
    code = "stale_version"


class PayloadTooLargeError(VigilError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailedError(VigilError):
    status_code = 422
    code = "validation_failed"

    @classmethod
    def on(cls, field: str, message: str) -> ValidationFailedError:
        return cls(f"{field}: {message}", errors=[FieldError(field, message)])


class IdempotencyKeyReusedError(ValidationFailedError):
    code = "idempotency_key_reused"


class AttachmentHashMismatchError(ValidationFailedError):
    code = "attachment_hash_mismatch"
    keeps_changes = True


class UnsupportedMediaTypeError(VigilError):
    status_code = 415
    code = "unsupported_media_type"


class UnsupportedContentEncodingError(UnsupportedMediaTypeError):
    """A request body in a content coding the server does not decode; the answer lists the
    codings it does (``Accept-Encoding``, RFC 7694 §3)."""

    code = "unsupported_content_encoding"

    def __init__(self, message: str, *, accepted: Sequence[str]) -> None:
        super().__init__(message)
        self.accepted = list(accepted)

    def headers(self) -> dict[str, str]:
        return {"Accept-Encoding": ", ".join(self.accepted) or "identity"}


class ClientTooOldError(VigilError):
    status_code = 426
    code = "client_too_old"


class PreconditionRequiredError(VigilError):
    status_code = 428
    code = "version_required"


class TooManyAttemptsError(VigilError):
    status_code = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, int(retry_after_s))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class ChecksumMismatchError(VigilError):
    """tus checksum extension: the chunk was not stored; the offset did not move."""

    status_code = 460
    code = "checksum_mismatch"


def error_body(
    code: str, message: str, errors: Sequence[FieldError] = (), request_id: str | None = None
) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "errors": [{"field": e.field, "message": e.message} for e in errors],
        "request_id": request_id,
    }


def unexpected_error_response(exc: BaseException, request_id: str | None) -> JSONResponse:
    """The answer to any error the mapping does not know: logged without its message (which
    may hold SQL parameters, paths or a narrative), answered without detail."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in frames[-8:]]
    log.error(
        "unhandled error",
        extra={"exc_type": type(exc).__name__, "frames": where, "request_id": request_id},
    )
    return JSONResponse(
        error_body(
            "internal_error",
            "Vigil could not complete this request. Nothing was saved; try again, and tell "
            "your administrator the request id if it keeps happening.",
            (),
            request_id,
        ),
        status_code=500,
    )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        head, rest = parts[0], parts[1:]
        if head == "body":
            return ".".join(rest) or "body"
        return f"{head}:{'.'.join(rest)}" if rest else head
    return ".".join(parts)


def _clean_message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    # pydantic prefixes messages raised from validators with "Value error, "; the officer does
    # not need to know how the check was implemented.
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def _field_error(error: dict[str, Any]) -> FieldError:
    if error.get("type") == "json_invalid":
        # FastAPI puts the character offset where the field name would be.
        loc = tuple(error.get("loc", ()))
        reason = (error.get("ctx") or {}).get("error") or "JSON decode error"
        where = f" at position {loc[1]}" if len(loc) > 1 else ""
        return FieldError("body", f"is not valid JSON: {reason}{where}")
    return FieldError(_field_name(error.get("loc", ())), _clean_message(error))


def install_error_handlers(app: FastAPI) -> None:
    """Register the single mapping from exceptions to HTTP responses."""

    @app.exception_handler(VigilError)
    async def _vigil_error(request: Request, exc: VigilError) -> Response:
        if isinstance(exc, SignInRequiredError):
            target = "/login?" + urlencode({"next": exc.next_path})
            return RedirectResponse(target, status_code=303)
        return JSONResponse(
            error_body(exc.code, exc.message, exc.errors, _request_id(request)),
            status_code=exc.status_code,
            headers=exc.headers(),
        )

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # The link dropped while the body was arriving (every few minutes on 2G): nothing was
        # read, nothing written, and nobody is left to answer. Not a server error.
        log.info("client disconnected mid-request", extra={"request_id": _request_id(request)})
        return JSONResponse(
            error_body(
                "client_disconnected",
                "The connection closed before the request arrived.",
                (),
                _request_id(request),
            ),
            status_code=499,
        )

    @app.exception_handler(UnknownCategoryError)
    async def _unknown_category(request: Request, exc: UnknownCategoryError) -> JSONResponse:
        error = FieldError("category", str(exc))
        return JSONResponse(
            error_body("validation_failed", str(exc), [error], _request_id(request)),
            status_code=422,
        )

    @app.exception_handler(AlertError)
    async def _alert_refused(request: Request, exc: AlertError) -> JSONResponse:
        # Rules, matchers and silences the alert core cannot run: the field is named when the
        # core knows it (a rule's path), else the whole request body.
        status, code = (
            (409, "conflict")
            if isinstance(exc, AlertStateError)
            else (
                422,
                "validation_failed",
            )
        )
        field = exc.path if isinstance(exc, RuleError) and exc.path else "body"
        return JSONResponse(
            error_body(code, str(exc), [FieldError(field, str(exc))], _request_id(request)),
            status_code=status,
        )

    @app.exception_handler(InvalidCellError)
    async def _invalid_cell(request: Request, exc: InvalidCellError) -> JSONResponse:
        return JSONResponse(
            error_body(
                "validation_failed", str(exc), [FieldError("cell", str(exc))], _request_id(request)
            ),
            status_code=422,
        )

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5]) or "invalid request"
        if len(errors) > 5:
            summary += f"; and {len(errors) - 5} more"
        return JSONResponse(
            error_body("validation_failed", summary, errors, _request_id(request)),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "not_authenticated",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI answers a body that is not UTF-8 with a bare 400; it is malformed JSON.
            error = FieldError("body", "is not valid JSON: the body must be UTF-8 text")
            return JSONResponse(
                error_body(
                    "validation_failed",
                    f"body: {error.message}",
                    [error],
                    _request_id(request),
                ),
                status_code=422,
            )
        # A body over the limit (found while streaming it) is a problem of the field "body".
        errors = [FieldError("body", str(exc.detail))] if exc.status_code == 413 else []
        return JSONResponse(
            error_body(code, str(exc.detail), errors, _request_id(request)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        log.error(
            "database unavailable",
            extra={"exc_type": type(exc.orig).__name__, "request_id": _request_id(request)},
        )
        return JSONResponse(
            error_body(
                "database_unavailable",
                "The database is not reachable right now. Nothing was saved; retry later.",
                (),
                _request_id(request),
            ),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # A number a client sent that the database cannot hold (an id beyond 64 bits, say):
        # PostgreSQL answers "out of range", SQLite's driver raises OverflowError.
        message = "A number in this request is out of range."
        return JSONResponse(
            error_body(
                "validation_failed", message, [FieldError("request", message)], _request_id(request)
            ),
            status_code=422,
        )

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return JSONResponse(
            error_body(
                "stale_version",
                "Someone else changed this record while you were saving. Nothing was "
                "saved; reload it and apply your change again.",
                (),
                _request_id(request),
            ),
            status_code=412,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # A race the services could not see coming (two requests creating the same thing).
        log.warning(
            "integrity conflict",
            extra={"exc_type": type(exc.orig).__name__, "request_id": _request_id(request)},
        )
        return JSONResponse(
            error_body(
                "conflict",
                "This conflicts with data stored at the same moment. Nothing was saved; "
                "reload and try again.",
                (),
                _request_id(request),
            ),
            status_code=409,
        )
