"""Every table of the service, imported in one place for Alembic (conversations land with messaging)."""

__all__: list[str] = []
