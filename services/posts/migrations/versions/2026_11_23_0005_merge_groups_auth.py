"""merge the groups and auth branches (both grew from 0002 in parallel)

Revision ID: 0005_merge
Revises: 0003_groups, 0004_auth
Create Date: 2026-11-23 11:25:00

"""
from typing import Sequence, Union

revision: str = "0005_merge"
down_revision: Union[str, Sequence[str], None] = ("0003_groups", "0004_auth")
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
