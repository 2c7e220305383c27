"""feeds: home timelines' fan-out and merges of the same source serialize (no post slips between them)

Under READ COMMITTED a new post's fan-out and a concurrent follow (join, unmute) of its source each missed the
other's uncommitted row: the post's statement did not see the follow, the follow's merge did not see the post,
and the post was missing for good from a timeline complete above its horizon (an unfollow, leave or mute racing
a post likewise left an entry the sources no longer give). Now each side first takes a transaction-scoped
advisory lock on the source — a post's group, else its author: a new post a shared one (posts of one source
still go in side by side), a follow or unfollow, join or leave, mute or unmute an exclusive one. Whichever comes
second waits for the first to commit, and its fan-out or merge (later statements: a fresh snapshot under READ
COMMITTED) sees the first's rows. BEFORE ROW triggers take the locks, so the fan-out and merge functions of 0018
and 0021 run unchanged after them.

Revision ID: 0022_home_fanout_source_locks
Revises: 0021_home_fanout_per_statement
Create Date: 2026-11-26 07:40:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = "0022_home_fanout_source_locks"
down_revision: Union[str, Sequence[str], None] = "0021_home_fanout_per_statement"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FUNCTION = """
CREATE FUNCTION public.hearth_home_lock_source() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row record := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    source uuid;
    k bigint;
BEGIN
    IF TG_TABLE_NAME = 'posts' THEN
        source := coalesce(row.group_id, row.author_id);
    ELSIF TG_TABLE_NAME = 'follows' THEN
        source := row.followee_id;
    ELSE
        source := row.group_id;  -- group_members, group_mutes
    END IF;
    k := hashtextextended('hearth_home:' || source::text, 0);
    IF TG_TABLE_NAME = 'posts' THEN
        PERFORM pg_advisory_xact_lock_shared(k);
    ELSE
        PERFORM pg_advisory_xact_lock(k);
    END IF;
    RETURN row;
END $$;
"""

TRIGGERS = {
    "hearth_home_post_lock": "BEFORE INSERT ON posts",
    "hearth_home_follow_lock": "BEFORE INSERT OR DELETE ON follows",
    "hearth_home_member_lock": "BEFORE INSERT OR DELETE ON group_members",
    "hearth_home_mute_lock": "BEFORE INSERT OR DELETE ON group_mutes",
}


def upgrade() -> None:
    op.execute(FUNCTION)
    for name, when in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} FOR EACH ROW EXECUTE FUNCTION hearth_home_lock_source()")


def downgrade() -> None:
    for name, when in TRIGGERS.items():
        op.execute(f"DROP TRIGGER {name} ON {when.split(' ON ')[1]}")
    op.execute("DROP FUNCTION public.hearth_home_lock_source()")
