"""What every service app checks on top of the token signature: installed by create_service_app.

- token guards (shared.directory): revoked API tokens and ended sessions refused, a deactivated
  person refused, roles from the read model. posts replaces them with guards over its own tables.
- rate limits (shared.ratelimit), kept in PostgreSQL.
- /metrics: meant for the internal network only (the gateway does not route it); with
  HEARTH_METRICS_TOKEN set it also wants `Authorization: Bearer <that token>`.
"""

import hmac

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.config import HearthSettings
from shared.directory import check_api_token, check_session_token
from shared.errors import problem
from shared.ratelimit import RateLimitMiddleware


def install_guards(app: FastAPI, settings: HearthSettings) -> None:
    app.state.api_token_guard = check_api_token
    app.state.session_guard = check_session_token
    app.add_middleware(RateLimitMiddleware, settings=settings)
    if settings.metrics_token:
        app.add_middleware(MetricsTokenMiddleware, token=settings.metrics_token)


def metrics_authorized(authorization: str, token: str) -> bool:
    """The Authorization header carries the metrics bearer token (compared in constant time)."""
    scheme, _, presented = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


class MetricsTokenMiddleware:
    def __init__(self, app: ASGIApp, *, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            headers = dict(scope["headers"])
            if not metrics_authorized(headers.get(b"authorization", b"").decode("latin-1"), self.token):
                response = problem(401, "unauthorized", "Authentication required",
                                   "/metrics wants the metrics bearer token.",
                                   headers={"WWW-Authenticate": 'Bearer realm="hearth-metrics"'})
                return await response(scope, receive, send)
        await self.app(scope, receive, send)
