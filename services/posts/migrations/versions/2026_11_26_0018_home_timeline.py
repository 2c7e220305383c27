"""feeds: a materialized home timeline per person (fan-out on write, capped), kept by triggers

Each person's home timeline holds the newest candidates (about HOME_CAP) of the home sources that are
per person: followed people's posts outside groups, posts of joined groups (not All company, not muted)
and one's own posts. Entries are candidates, never permissions: the home page still applies the one
visibility rule (`readable_by`) to every entry it reads.

- `home_timelines` (one row per person): entries newer than the horizon `(horizon_at, horizon_id)` are
  complete (no horizon: all of them are there). A missing row means "not materialized": home reads the
  sources as before.
- `home_entries (person_id, created_at, post_id)`: the primary key is the keyset range scan of a page.

Triggers keep both in the transaction of the change that causes it (so the outbox guarantee holds):
a new post fans out to its author, the author's followers (outside groups) or the group's members who
did not mute it; a soft-deleted post leaves them; follow/join/unmute merge the newest posts of the
followee/group in; unfollow/leave/mute remove them; a new person gets an empty, complete timeline.
About one post in 16 trims its recipients' timelines back to HOME_CAP (raising their horizon), and every
merge does. The upgrade fills every existing person's timeline (`hearth_home_rebuild`).

Revision ID: 0018_home_timeline
Revises: 0017_search_tags_pk_name
Create Date: 2026-11-26 06:55:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0018_home_timeline"
down_revision: Union[str, Sequence[str], None] = "0017_search_tags_pk_name"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

HOME_CAP = 400

FUNCTIONS = f"""
-- The people whose timeline a post belongs in: its author, and the author's followers (outside groups)
-- or the members of its group who did not mute it (All company reaches everyone by its own feed source).
CREATE FUNCTION public.hearth_home_recipients(author uuid, in_group uuid) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT author
    UNION
    SELECT f.follower_id FROM follows f WHERE in_group IS NULL AND f.followee_id = author
    UNION
    SELECT m.person_id FROM group_members m JOIN groups g ON g.id = m.group_id AND NOT g.all_company
    WHERE m.group_id = in_group
      AND NOT EXISTS (SELECT 1 FROM group_mutes u WHERE u.person_id = m.person_id AND u.group_id = m.group_id)
$$;

-- Entries at or below (at, id) are no longer known complete: raise the horizon there and drop them.
CREATE FUNCTION public.hearth_home_raise(p uuid, at timestamptz, id uuid) RETURNS void
LANGUAGE sql AS $$
    UPDATE home_timelines SET horizon_at = at, horizon_id = id
    WHERE person_id = p AND (horizon_at IS NULL OR (horizon_at, horizon_id) < (at, id));
    DELETE FROM home_entries WHERE person_id = p AND (created_at, post_id) <= (at, id);
$$;

-- Back to the newest {HOME_CAP} entries.
CREATE FUNCTION public.hearth_home_trim(p uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cut record;
BEGIN
    SELECT created_at, post_id INTO cut FROM home_entries WHERE person_id = p
    ORDER BY created_at DESC, post_id DESC OFFSET {HOME_CAP} LIMIT 1;
    IF FOUND THEN
        PERFORM hearth_home_raise(p, cut.created_at, cut.post_id);
    END IF;
END $$;

-- Merge the newest posts of one source (a followed person's outside groups, or a group's) into p's
-- timeline: those above p's horizon, at most {HOME_CAP} + 1, then trim (what was not merged lies below it).
CREATE FUNCTION public.hearth_home_merge(p uuid, by_author uuid, in_group uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    h record;
BEGIN
    SELECT horizon_at, horizon_id INTO h FROM home_timelines WHERE person_id = p;
    IF NOT FOUND THEN
        RETURN;  -- not materialized: home reads the sources
    END IF;
    IF by_author IS NOT NULL THEN
        INSERT INTO home_entries (person_id, created_at, post_id)
        SELECT p, s.created_at, s.id FROM (
            SELECT created_at, id FROM posts
            WHERE author_id = by_author AND group_id IS NULL AND deleted_at IS NULL
              AND (h.horizon_at IS NULL OR (created_at, id) > (h.horizon_at, h.horizon_id))
            ORDER BY created_at DESC, id DESC LIMIT {HOME_CAP} + 1) s
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO home_entries (person_id, created_at, post_id)
        SELECT p, s.created_at, s.id FROM (
            SELECT created_at, id FROM posts
            WHERE group_id = in_group AND deleted_at IS NULL
              AND (h.horizon_at IS NULL OR (created_at, id) > (h.horizon_at, h.horizon_id))
            ORDER BY created_at DESC, id DESC LIMIT {HOME_CAP} + 1) s
        ON CONFLICT DO NOTHING;
    END IF;
    PERFORM hearth_home_trim(p);
END $$;

-- p's timeline from scratch: the newest {HOME_CAP} + 1 candidates of its sources, then trimmed.
CREATE FUNCTION public.hearth_home_rebuild(p uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM home_entries WHERE person_id = p;
    INSERT INTO home_timelines (person_id) VALUES (p)
    ON CONFLICT (person_id) DO UPDATE SET horizon_at = NULL, horizon_id = NULL;
    INSERT INTO home_entries (person_id, created_at, post_id)
    SELECT p, c.created_at, c.id FROM (
        SELECT x.created_at, x.id FROM follows f CROSS JOIN LATERAL (
            SELECT created_at, id FROM posts
            WHERE author_id = f.followee_id AND group_id IS NULL AND deleted_at IS NULL
            ORDER BY created_at DESC, id DESC LIMIT {HOME_CAP} + 1) x
        WHERE f.follower_id = p
        UNION
        SELECT x.created_at, x.id FROM group_members m JOIN groups g ON g.id = m.group_id AND NOT g.all_company
        CROSS JOIN LATERAL (
            SELECT created_at, id FROM posts WHERE group_id = m.group_id AND deleted_at IS NULL
            ORDER BY created_at DESC, id DESC LIMIT {HOME_CAP} + 1) x
        WHERE m.person_id = p
          AND NOT EXISTS (SELECT 1 FROM group_mutes u WHERE u.person_id = p AND u.group_id = m.group_id)
        UNION
        SELECT created_at, id FROM (
            SELECT created_at, id FROM posts WHERE author_id = p AND deleted_at IS NULL
            ORDER BY created_at DESC, id DESC LIMIT {HOME_CAP} + 1) o
        ORDER BY 1 DESC, 2 DESC LIMIT {HOME_CAP} + 1) c;
    PERFORM hearth_home_trim(p);
END $$;

CREATE FUNCTION public.hearth_home_post_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO home_entries (person_id, created_at, post_id)
    SELECT h.person_id, NEW.created_at, NEW.id
    FROM hearth_home_recipients(NEW.author_id, NEW.group_id) r(person_id)
    JOIN home_timelines h ON h.person_id = r.person_id
    WHERE h.horizon_at IS NULL OR (NEW.created_at, NEW.id) > (h.horizon_at, h.horizon_id)
    ON CONFLICT DO NOTHING;
    IF hashtext(NEW.id::text) & 15 = 0 THEN  -- amortized: about one post in 16 trims its recipients' timelines
        PERFORM hearth_home_trim(r.person_id)
        FROM hearth_home_recipients(NEW.author_id, NEW.group_id) r(person_id) ORDER BY r.person_id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION public.hearth_home_post_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM home_entries
    WHERE person_id IN (SELECT hearth_home_recipients(OLD.author_id, OLD.group_id))
      AND created_at = OLD.created_at AND post_id = OLD.id;
    RETURN NULL;
END $$;

CREATE FUNCTION public.hearth_home_follow_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM hearth_home_merge(NEW.follower_id, NEW.followee_id, NULL);
    ELSE
        DELETE FROM home_entries e USING posts p
        WHERE e.person_id = OLD.follower_id AND p.id = e.post_id
          AND p.author_id = OLD.followee_id AND p.group_id IS NULL;
    END IF;
    RETURN NULL;
END $$;

-- Joining or unmuting a group merges its posts in; leaving or muting it removes them (not one's own).
CREATE FUNCTION public.hearth_home_group_changed() RETURNS trigger
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

CREATE FUNCTION public.hearth_home_person_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO home_timelines (person_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
"""

TRIGGERS = {
    "hearth_home_post_added": "AFTER INSERT ON posts FOR EACH ROW EXECUTE FUNCTION hearth_home_post_added()",
    "hearth_home_post_deleted": "AFTER UPDATE OF deleted_at ON posts FOR EACH ROW "
                                "WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL) "
                                "EXECUTE FUNCTION hearth_home_post_removed()",
    "hearth_home_post_removed": "AFTER DELETE ON posts FOR EACH ROW EXECUTE FUNCTION hearth_home_post_removed()",
    "hearth_home_follow_changed": "AFTER INSERT OR DELETE ON follows FOR EACH ROW "
                                  "EXECUTE FUNCTION hearth_home_follow_changed()",
    "hearth_home_member_changed": "AFTER INSERT OR DELETE ON group_members FOR EACH ROW "
                                  "EXECUTE FUNCTION hearth_home_group_changed()",
    "hearth_home_mute_changed": "AFTER INSERT OR DELETE ON group_mutes FOR EACH ROW "
                                "EXECUTE FUNCTION hearth_home_group_changed()",
    "hearth_home_person_added": "AFTER INSERT ON people FOR EACH ROW EXECUTE FUNCTION hearth_home_person_added()",
}
FUNCTION_NAMES = ["hearth_home_post_added()", "hearth_home_post_removed()", "hearth_home_follow_changed()",
                  "hearth_home_group_changed()", "hearth_home_person_added()", "hearth_home_rebuild(uuid)",
                  "hearth_home_merge(uuid, uuid, uuid)", "hearth_home_trim(uuid)",
                  "hearth_home_raise(uuid, timestamptz, uuid)", "hearth_home_recipients(uuid, uuid)"]


def upgrade() -> None:
    op.create_table(
        "home_timelines",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("horizon_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("horizon_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_home_timelines_person_id_people")),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_home_timelines")),
    )
    op.create_table(
        "home_entries",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "created_at", "post_id", name=op.f("pk_home_entries")),
    )
    for function in FUNCTIONS.strip().split("\n\n"):  # one statement each (asyncpg prepares them)
        op.execute(function)
    for name, definition in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")
    op.execute("SELECT hearth_home_rebuild(id) FROM people")  # backfill: every existing person's timeline


def downgrade() -> None:
    for name, definition in TRIGGERS.items():
        op.execute(f"DROP TRIGGER {name} ON {definition.split(' ON ')[1].split()[0]}")
    for function in FUNCTION_NAMES:
        op.execute(f"DROP FUNCTION public.{function}")
    op.drop_table("home_entries")
    op.drop_table("home_timelines")
