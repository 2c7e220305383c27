"""Which failures are the infrastructure's (wait and retry) and which are the code's or the data's.

Transient is not poison: a lost connection, a pool timeout, a serialization failure, a deadlock or a
broker error says nothing about the event or request being handled, so it must never count toward
dead-lettering and a request that meets one answers 503, not 500.
"""

import asyncio

import asyncpg
from aiokafka.errors import KafkaError
from sqlalchemy import exc as sa_exc

# SQLSTATE classes and codes that describe the server or the connection, not the statement:
# 08 connection exception, 53 insufficient resources, 57P0x shutdown / cannot connect now,
# 40001 serialization failure, 40P01 deadlock, 55000 "database is not accepting connections".
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57P")
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55000", "55P03"}


def _chain(exc: BaseException):
    """The exception, what SQLAlchemy wrapped (`orig`) and what caused each, depth first."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__context__, e.__cause__, getattr(e, "orig", None)]


def is_transient(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) is an infrastructure fault worth waiting out."""
    for e in _chain(exc):
        if isinstance(e, (OSError, TimeoutError, asyncio.TimeoutError, ConnectionError, sa_exc.TimeoutError,
                          asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                          asyncpg.TooManyConnectionsError, asyncpg.SerializationError,
                          asyncpg.DeadlockDetectedError)):
            return True
        if isinstance(e, KafkaError):
            return True
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, sa_exc.InterfaceError | sa_exc.DisconnectionError):
            return True
        state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(state, str) and (state in _TRANSIENT_SQLSTATES or state.startswith(_TRANSIENT_SQLSTATE_CLASSES)):
            return True
    return False
