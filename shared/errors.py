"""One error base class and the handlers that render every error as RFC 9457 problem+json."""

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("hearth.errors")


class AppError(Exception):
    """A failure a client can act on: a stable `code`, an HTTP status and optional data."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **data: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.data = data


class NotFound(AppError):
    status, code, title = 404, "not-found", "Not found"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, *, error: str = "invalid_token", **data: Any):
        # RFC 6750: tell the client why its bearer token was refused.
        super().__init__(detail, headers={"WWW-Authenticate": f'Bearer realm="hearth", error="{error}"'}, **data)


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidInput(AppError):
    status, code, title = 422, "invalid-input", "Invalid input"


class TooManyRequests(AppError):
    status, code, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **data: Any):
        super().__init__(detail, **data)
        self.headers["Retry-After"] = str(retry_after)


def problem(status: int, code: str, title: str, detail: str, request: Request | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": f"https://hearth.dev/problems/{code}", "title": title, "status": status,
            "detail": detail, "code": code, **extra}
    if request is not None:
        body["instance"] = request.url.path
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _app_error(request: Request, exc: AppError) -> JSONResponse:
    return problem(exc.status, exc.code, exc.title, exc.detail, request, exc.headers, **exc.data)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "malformed-json", "Malformed JSON", "The request body is not valid JSON.", request)
    return problem(422, "validation-failed", "Validation failed", "The request has invalid fields.", request,
                   errors=errors)


_HTTP_CODES = {404: ("not-found", "Not found"), 405: ("method-not-allowed", "Method not allowed"),
               413: ("payload-too-large", "Payload too large"), 415: ("unsupported-media-type", "Unsupported media type")}


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code, title = _HTTP_CODES.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem(exc.status_code, code, title, detail, request, getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Anything else is answered by RequestContextMiddleware (shared/app.py): 503 for an
    # infrastructure outage, 500 otherwise, never a stack trace, never a dropped connection.
