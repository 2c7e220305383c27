"""The notifications service's table base; its metadata is what Alembic migrates."""

from sqlmodel import SQLModel

from shared.db import SessionDep, new_registry
from shared.realtime import FrameTables

registry = new_registry()
metadata = registry.metadata
# The socket's stored frames (shared/realtime.py): per-person sequence and resume from the database.
frames = FrameTables(metadata)


class Table(SQLModel, registry=registry):
    """Base for this service's tables (its own registry keeps other services' tables out)."""


__all__ = ["SessionDep", "Table", "frames", "metadata"]
