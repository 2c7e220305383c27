"""The messaging service's table base; its metadata is what Alembic migrates."""

from sqlmodel import SQLModel

from shared.db import SessionDep, new_registry

registry = new_registry()
metadata = registry.metadata


class Table(SQLModel, registry=registry):
    """Base for this service's tables (its own registry keeps other services' tables out)."""


__all__ = ["SessionDep", "Table", "metadata"]
