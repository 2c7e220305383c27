"""infra tables for request guards: revoked sessions, idempotency keys, rate-limit windows

Revision ID: 0004_guards_infra
Revises: '0003_messaging_conversations'
Create Date: 2026-11-25 21:50:00.000000

"""
from typing import Sequence, Union

from shared.migration_ops import create_guard_tables, drop_guard_tables

# revision identifiers, used by Alembic.
revision: str = '0004_guards_infra'
down_revision: Union[str, Sequence[str], None] = '0003_messaging_conversations'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    create_guard_tables()


def downgrade() -> None:
    """Downgrade schema."""
    drop_guard_tables()
