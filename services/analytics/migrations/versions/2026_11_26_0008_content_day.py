"""content_day: author_day summed per day (the overview's totals), flushed with it

Revision ID: 0008_content_day
Revises: 0007_post_viewers_post_day
Create Date: 2026-11-26 04:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008_content_day'
down_revision: Union[str, Sequence[str], None] = '0007_post_viewers_post_day'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

DELTA = "pg_temp.author_day_delta"
COLUMNS = "posts, organic_posts, comments, reach, responded"
SUMS = "sum(posts), sum(organic_posts), sum(comments), sum(reach), sum(responded)"
NONZERO = "sum(posts) <> 0 OR sum(organic_posts) <> 0 OR sum(comments) <> 0 OR sum(reach) <> 0 OR sum(responded) <> 0"


def add(table: str) -> str:
    return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COLUMNS.split(", "))


def flush(with_days: bool) -> str:
    """author_day_flush(): the transaction's deltas, in key order, into author_day (and content_day)."""
    days = f""",
  a AS (INSERT INTO author_day (day, author_id, {COLUMNS})
        SELECT day, author_id, {SUMS} FROM d GROUP BY day, author_id HAVING {NONZERO} ORDER BY day, author_id
        ON CONFLICT (day, author_id) DO UPDATE SET {add("author_day")})
  INSERT INTO content_day (day, {COLUMNS})
  SELECT day, {SUMS} FROM d GROUP BY day HAVING {NONZERO} ORDER BY day
  ON CONFLICT (day) DO UPDATE SET {add("content_day")};""" if with_days else f"""
  INSERT INTO author_day (day, author_id, {COLUMNS})
  SELECT day, author_id, {SUMS} FROM d GROUP BY day, author_id HAVING {NONZERO} ORDER BY day, author_id
  ON CONFLICT (day, author_id) DO UPDATE SET {add("author_day")};"""
    return f"""
CREATE OR REPLACE FUNCTION author_day_flush() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('{DELTA}') IS NULL THEN
    RETURN;
  END IF;
  WITH d AS (DELETE FROM {DELTA} RETURNING *){days}
END $$"""


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('content_day',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('posts', sa.Integer(), nullable=False),
    sa.Column('organic_posts', sa.Integer(), nullable=False),
    sa.Column('comments', sa.Integer(), nullable=False),
    sa.Column('reach', sa.BigInteger(), nullable=False),
    sa.Column('responded', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_content_day'))
    )
    op.execute(flush(with_days=True))
    op.execute(f"INSERT INTO content_day (day, {COLUMNS}) SELECT day, {SUMS} FROM author_day GROUP BY day")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute(flush(with_days=False))
    op.drop_table('content_day')
