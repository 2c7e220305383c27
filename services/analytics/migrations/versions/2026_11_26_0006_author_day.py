"""author_day: content per author per UTC day, kept from posts and comments by statement triggers

Revision ID: 0006_author_day
Revises: 0005_rollup_state
Create Date: 2026-11-26 04:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006_author_day'
down_revision: Union[str, Sequence[str], None] = '0005_rollup_state'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

NIL = "'00000000-0000-0000-0000-000000000000'::uuid"
RESPONDED = "(first_response_at IS NOT NULL AND first_response_at <= created_at + interval '24 hours')"
# One row's contribution: sign 1 for a row that is there now, -1 for the row as it was.
POST_ROW = (f"(created_at AT TIME ZONE 'UTC')::date, coalesce(author_id, {NIL}), {{s}}, "
            f"{{s}} * (kind IS DISTINCT FROM 'announcement')::int, 0, {{s}} * reach::bigint, {{s}} * {RESPONDED}::int")
COMMENT_ROW = f"(created_at AT TIME ZONE 'UTC')::date, coalesce(author_id, {NIL}), 0, 0, {{s}}, 0, 0"
DELTA = "pg_temp.author_day_delta"
COLUMNS = "day, author_id, posts, organic_posts, comments, reach, responded"


def note_function(table: str, row: str) -> str:
    """A statement trigger's function: the rows' contributions, new minus old, into the session's deltas."""
    insert = f"INSERT INTO {DELTA} ({COLUMNS})"
    new = f"SELECT {row.format(s=1)} FROM new_rows WHERE created_at IS NOT NULL"
    old = f"SELECT {row.format(s=-1)} FROM old_rows WHERE created_at IS NOT NULL"
    return f"""
CREATE FUNCTION author_day_note_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM author_day_deltas();
  IF TG_OP = 'INSERT' THEN
    {insert} {new};
  ELSIF TG_OP = 'UPDATE' THEN
    {insert} {new} UNION ALL {old};
  ELSE
    {insert} {old};
  END IF;
  RETURN NULL;
END $$"""


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('author_day',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('posts', sa.Integer(), nullable=False),
    sa.Column('organic_posts', sa.Integer(), nullable=False),
    sa.Column('comments', sa.Integer(), nullable=False),
    sa.Column('reach', sa.BigInteger(), nullable=False),
    sa.Column('responded', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'author_id', name=op.f('pk_author_day'))
    )
    # A viewer's posts straight from the index (reach leaves out the views of people who are not members).
    op.create_index('ix_post_viewers_person_id_post_id', 'post_viewers', ['person_id', 'post_id'], unique=False)
    op.drop_index('ix_post_viewers_person_id', table_name='post_viewers')
    # The deltas of the current transaction (a temporary table: no locks, nothing shared until the flush).
    op.execute(f"""
CREATE FUNCTION author_day_deltas() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('{DELTA}') IS NULL THEN
    CREATE TEMP TABLE author_day_delta (day date, author_id uuid, posts int, organic_posts int, comments int,
                                        reach bigint, responded int) ON COMMIT DELETE ROWS;
  END IF;
END $$""")
    op.execute(note_function("posts", POST_ROW))
    op.execute(note_function("comments", COMMENT_ROW))
    for table in ("posts", "comments"):
        op.execute(f"CREATE TRIGGER author_day_{table}_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION author_day_note_{table}()")
        op.execute(f"CREATE TRIGGER author_day_{table}_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION author_day_note_{table}()")
    op.execute("CREATE TRIGGER author_day_posts_update AFTER UPDATE ON posts "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION author_day_note_posts()")
    # Applies the transaction's deltas in key order (one statement: concurrent writers lock rows in one order).
    op.execute(f"""
CREATE FUNCTION author_day_flush() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('{DELTA}') IS NULL THEN
    RETURN;
  END IF;
  WITH d AS (DELETE FROM {DELTA} RETURNING *)
  INSERT INTO author_day ({COLUMNS})
  SELECT day, author_id, sum(posts), sum(organic_posts), sum(comments), sum(reach), sum(responded) FROM d
  GROUP BY day, author_id
  HAVING sum(posts) <> 0 OR sum(organic_posts) <> 0 OR sum(comments) <> 0 OR sum(reach) <> 0 OR sum(responded) <> 0
  ORDER BY day, author_id
  ON CONFLICT (day, author_id) DO UPDATE SET posts = author_day.posts + excluded.posts,
    organic_posts = author_day.organic_posts + excluded.organic_posts, comments = author_day.comments + excluded.comments,
    reach = author_day.reach + excluded.reach, responded = author_day.responded + excluded.responded;
END $$""")
    # What is there already.
    op.execute(f"""
INSERT INTO author_day ({COLUMNS})
SELECT day, author_id, sum(posts), sum(organic_posts), sum(comments), sum(reach), sum(responded) FROM (
  SELECT {POST_ROW.format(s=1)} FROM posts WHERE created_at IS NOT NULL
  UNION ALL SELECT {COMMENT_ROW.format(s=1)} FROM comments) t ({COLUMNS})
GROUP BY day, author_id""")


def downgrade() -> None:
    """Downgrade schema."""
    for trigger in ("posts_insert", "posts_update", "posts_delete"):
        op.execute(f"DROP TRIGGER author_day_{trigger} ON posts")
    for trigger in ("comments_insert", "comments_delete"):
        op.execute(f"DROP TRIGGER author_day_{trigger} ON comments")
    for function in ("author_day_flush", "author_day_note_posts", "author_day_note_comments", "author_day_deltas"):
        op.execute(f"DROP FUNCTION {function}()")
    op.drop_table('author_day')
    op.create_index('ix_post_viewers_person_id', 'post_viewers', ['person_id'], unique=False)
    op.drop_index('ix_post_viewers_person_id_post_id', table_name='post_viewers')
