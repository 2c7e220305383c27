"""What every service app checks on top of the token signature: installed by create_service_app.

- token guards (shared.directory): revoked API tokens and ended sessions refused, a deactivated
  person refused, roles from the read model. posts replaces them with guards over its own tables.
- rate limits (shared.ratelimit), kept in PostgreSQL.
"""

from fastapi import FastAPI

from shared.config import HearthSettings
from shared.directory import check_api_token, check_session_token
from shared.ratelimit import RateLimitMiddleware


def install_guards(app: FastAPI, settings: HearthSettings) -> None:
    app.state.api_token_guard = check_api_token
    app.state.session_guard = check_session_token
    app.add_middleware(RateLimitMiddleware, settings=settings)
