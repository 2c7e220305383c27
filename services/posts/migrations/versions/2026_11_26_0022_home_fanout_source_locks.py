"""feeds: home timelines' fan-out and merges of the same source serialize (no post slips between them)

Under READ COMMITTED a new post's fan-out and a concurrent follow (join, unmute) of its source each missed the
other's uncommitted row: the post's statement did not see the follow, the follow's merge did not see the post,
and the post was missing for good from a timeline that claimed to be complete above its horizon (an unfollow,
leave or mute racing a post likewise left an entry the sources no longer give). Each side now takes a
transaction-scoped advisory lock on the source (the post's group, else its author) before it reads: fan-out a
shared one (posts of one source still go in side by side), follow/unfollow, join/leave and mute/unmute an
exclusive one. Whichever comes second waits for the first to commit, and its next statement sees the first's rows.

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

FUNCTIONS = """
CREATE OR REPLACE FUNCTION public.hearth_home_source_key(source uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('hearth_home:' || source::text, 0) $$;

CREATE OR REPLACE FUNCTION public.hearth_home_posts_added() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bulk boolean := (SELECT count(*) > 16 FROM new_posts);
BEGIN
    -- Wait for a follow/join/unmute of these sources in progress (and hold new ones off until commit).
    PERFORM pg_advisory_xact_lock_shared(s.k) FROM (
        SELECT DISTINCT hearth_home_source_key(coalesce(group_id, author_id)) AS k FROM new_posts
        WHERE deleted_at IS NULL) s
    ORDER BY s.k;
    INSERT INTO home_entries (person_id, created_at, post_id)
    SELECT h.person_id, p.created_at, p.id
    FROM new_posts p CROSS JOIN LATERAL hearth_home_recipients(p.author_id, p.group_id) r(person_id)
    JOIN home_timelines h ON h.person_id = r.person_id
    WHERE p.deleted_at IS NULL AND (h.horizon_at IS NULL OR (p.created_at, p.id) > (h.horizon_at, h.horizon_id))
    ON CONFLICT DO NOTHING;
    PERFORM hearth_home_trim(t.person_id) FROM (
        SELECT DISTINCT r.person_id
        FROM new_posts p CROSS JOIN LATERAL hearth_home_recipients(p.author_id, p.group_id) r(person_id)
        WHERE bulk OR hashtext(p.id::text) & 15 = 0) t
    ORDER BY t.person_id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION public.hearth_home_follow_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_advisory_xact_lock(hearth_home_source_key(NEW.followee_id));
        PERFORM hearth_home_merge(NEW.follower_id, NEW.followee_id, NULL);
    ELSE
        PERFORM pg_advisory_xact_lock(hearth_home_source_key(OLD.followee_id));
        DELETE FROM home_entries e USING posts p
        WHERE e.person_id = OLD.follower_id AND p.id = e.post_id
          AND p.author_id = OLD.followee_id AND p.group_id IS NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION public.hearth_home_group_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p uuid;
    g uuid;
    adds boolean := (TG_OP = 'INSERT') = (TG_TABLE_NAME = 'group_members');
BEGIN
    IF TG_OP = 'INSERT' THEN
        p := NEW.person_id; g := NEW.group_id;
    ELSE
        p := OLD.person_id; g := OLD.group_id;
    END IF;
    PERFORM pg_advisory_xact_lock(hearth_home_source_key(g));
    IF adds THEN
        IF EXISTS (SELECT 1 FROM group_members m JOIN groups gr ON gr.id = m.group_id AND NOT gr.all_company
                   WHERE m.person_id = p AND m.group_id = g)
           AND NOT EXISTS (SELECT 1 FROM group_mutes u WHERE u.person_id = p AND u.group_id = g) THEN
            PERFORM hearth_home_merge(p, NULL, g);
        END IF;
    ELSE
        DELETE FROM home_entries e USING posts x
        WHERE e.person_id = p AND x.id = e.post_id AND x.group_id = g AND x.author_id <> p;
    END IF;
    RETURN NULL;
END $$;
"""


def _earlier(revision: str):
    return op.get_context().script.get_revision(revision).module


def upgrade() -> None:
    for function in FUNCTIONS.strip().split("\n\n"):  # one statement each (asyncpg prepares them)
        op.execute(function)


def downgrade() -> None:
    """The functions as 0018 and 0021 defined them (the triggers call them by name and stay)."""
    restored = [_earlier("0021_home_fanout_per_statement").FUNCTION.strip()]
    restored += [f for f in _earlier("0018_home_timeline").FUNCTIONS.strip().split("\n\n")
                 if "hearth_home_follow_changed()" in f.split("\n")[0] or "hearth_home_group_changed()" in f.split("\n")[0]]
    for function in restored:
        op.execute(function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("DROP FUNCTION public.hearth_home_source_key(uuid)")
