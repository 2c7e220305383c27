"""search: search_tags' primary key named by the convention (pk_<table>), as every other table's

Revision ID: 0017_search_tags_pk_name
Revises: 0016_search_name_words
Create Date: 2026-11-26 04:35:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = "0017_search_tags_pk_name"
down_revision: Union[str, Sequence[str], None] = "0016_search_name_words"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute("ALTER TABLE search_tags RENAME CONSTRAINT search_tags_pkey TO pk_search_tags")


def downgrade() -> None:
    op.execute("ALTER TABLE search_tags RENAME CONSTRAINT pk_search_tags TO search_tags_pkey")
