"""SCIM errors (RFC 7644 §3.12) and the route class that renders every failure under /scim/v2 as one.

FastAPI exception handlers are app-wide and the rest of posts answers problem+json, so the SCIM
router uses `ScimRoute`: it catches what its own endpoints and dependencies raise and answers with
an `application/scim+json` Error, leaving every other route to the app's handlers.
"""

import structlog
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from scim2_models import Error, SCIMException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from shared.errors import AppError
from shared.faults import is_transient

SCIM_JSON = "application/scim+json"
log = structlog.get_logger("hearth.scim")


class ScimError(AppError):
    """A failure rendered as a SCIM Error; `scim_type` is the RFC 7644 Table 9 keyword, if any."""

    status, code, title = 400, "scim-error", "SCIM request failed"
    scim_type: str | None = None

    def __init__(self, detail: str | None = None, *, scim_type: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail, headers=headers)
        self.scim_type = scim_type or self.scim_type
        self.status = status or self.status

    def to_error(self) -> Error:
        return Error(status=self.status, scim_type=self.scim_type, detail=self.detail)


class ScimUnauthorized(ScimError):
    status, code, title = 401, "scim-unauthorized", "A valid SCIM bearer token is required"

    def __init__(self, detail: str | None = None):
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="hearth-scim"'})


class ScimNotFound(ScimError):
    status, code, title = 404, "scim-not-found", "Resource not found"


class ScimUniqueness(ScimError):
    status, code, title, scim_type = 409, "scim-uniqueness", "Value already in use", "uniqueness"


class ScimInvalidValue(ScimError):
    code, title, scim_type = "scim-invalid-value", "Invalid value", "invalidValue"


class ScimInvalidSyntax(ScimError):
    code, title, scim_type = "scim-invalid-syntax", "Invalid request body", "invalidSyntax"


class ScimInvalidFilter(ScimError):
    code, title, scim_type = "scim-invalid-filter", "Invalid filter", "invalidFilter"


class ScimPreconditionFailed(ScimError):
    status, code, title = 412, "scim-precondition-failed", "The resource has changed"


def scim_response(body: dict, *, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=SCIM_JSON, headers=headers)


def as_scim_error(exc: Exception) -> ScimError | None:
    """The SCIM form of an error raised below a SCIM route; None for a real bug."""
    if isinstance(exc, ScimError):
        return exc
    if isinstance(exc, SCIMException):  # scim2-models parsing a filter or applying a patch
        return ScimError(exc.detail, scim_type=exc.scim_type or None, status=exc.status)
    if isinstance(exc, ValidationError):  # scim2-models validating a payload
        error = Error.from_validation_errors(exc)[0]
        return ScimError(error.detail, scim_type=error.scim_type, status=error.status)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":
            return ScimInvalidSyntax("The request body is not valid JSON.")
        if first.get("loc", ())[:1] == ("body",):
            return ScimInvalidSyntax("The request body must be a JSON object.")
        where = ".".join(str(part) for part in first.get("loc", ())[1:])
        return ScimInvalidValue(f"{where}: {first.get('msg', 'invalid')}")
    if isinstance(exc, StarletteHTTPException) and exc.status_code < 500:  # e.g. a body that is not UTF-8
        detail = exc.detail if isinstance(exc.detail, str) else "The request cannot be read."
        return ScimInvalidSyntax(detail) if exc.status_code == 400 else ScimError(detail, status=exc.status_code)
    if is_transient(exc):  # the database is down: the identity provider should retry, not give up
        return ScimError("A backing service is unreachable; retry shortly.", status=503,
                         headers={"Retry-After": "5"})
    if isinstance(exc, AppError):  # the people and groups services speak problem+json codes
        keyword = {409: "uniqueness", 400: "invalidValue", 422: "invalidValue"}.get(exc.status)
        return ScimError(exc.detail, scim_type=keyword, status=400 if exc.status == 422 else exc.status)
    return None


class ScimRoute(APIRoute):
    """Renders every error of a SCIM endpoint (dependencies included) as a SCIM Error.

    It wraps the route's ASGI app, outside the request's dependencies: an error must leave them
    first, so that the request's unit of work rolls back. (Caught inside the route handler, the error
    never reaches the session dependency, which then commits what the failed request wrote.)"""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Without the app's handlers, an error leaves the route instead of becoming problem+json.
        try:
            await super().handle({**scope, "starlette.exception_handlers": ({}, {})}, receive, send)
        except Exception as exc:
            error = as_scim_error(exc)
            if error is None:
                log.exception("unhandled SCIM error", path=scope["path"])
                error = ScimError("Something went wrong on our side.", status=500)
            response = scim_response(error.to_error().model_dump(), status=error.status, headers=error.headers)
            await response(scope, receive, send)
