"""Rate limits kept in PostgreSQL (fixed windows), per person or token and per client address."""

from sqlalchemy import Column, DateTime, Integer, PrimaryKeyConstraint, String, Table

from shared.outbox import infra_metadata

BUCKET_MAX_LENGTH = 160

rate_limits_table = Table(
    "rate_limits", infra_metadata,
    Column("bucket", String(BUCKET_MAX_LENGTH), nullable=False),  # "<rule>:<person|token|address>"
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("hits", Integer, nullable=False),
    PrimaryKeyConstraint("bucket", "window_start"),
)
