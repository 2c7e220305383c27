"""Migration steps that every service's database takes alike, written once.

Each function is a frozen snapshot of the schema at the revision that calls it: never edit one
after it has shipped — a later change is a new function called by a new revision in each service.
"""

import sqlalchemy as sa
from alembic import op


def create_guard_tables() -> None:
    """Request guards (issue 7): revoked sessions, idempotency keys, rate-limit windows."""
    op.create_table('revoked_sessions',
    sa.Column('sid', sa.UUID(), nullable=False),
    sa.Column('person_id', sa.UUID(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_revoked_sessions'))
    )
    op.create_table('idempotency_keys',
    sa.Column('principal', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('principal', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('rate_limits',
    sa.Column('bucket', sa.String(length=160), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('bucket', 'window_start', name=op.f('pk_rate_limits'))
    )


def drop_guard_tables() -> None:
    op.drop_table('rate_limits')
    op.drop_table('idempotency_keys')
    op.drop_table('revoked_sessions')
