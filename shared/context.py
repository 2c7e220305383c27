"""Per-request context (request id, client) that flows into logs and events."""

import re
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
client_var: ContextVar[str | None] = ContextVar("client", default=None)

CLIENT_HEADER = "X-Hearth-Client"
_CLIENT = re.compile(r"^(web|ios|android|api(/[A-Za-z0-9._-]{1,64})?)$")


def parse_client(header: str | None) -> str | None:
    """`web|ios|android|api/<name>`; anything else is recorded as unknown rather than trusted."""
    if not header:
        return None
    header = header.strip().lower()
    return header if _CLIENT.match(header) else "unknown"
