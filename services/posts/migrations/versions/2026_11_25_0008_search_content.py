"""search over article titles (weight A), bodies (B) and comments (C)

posts.comments_vector holds the folded text of a post's newest 100 live comments, kept by a trigger on
comments, so one GIN index on posts.search_vector answers every search (no join in the hot path).

Revision ID: 0008_search_content
Revises: 0007_guards_infra
Create Date: 2026-11-25 22:20:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = "0008_search_content"
down_revision: Union[str, Sequence[str], None] = "0007_guards_infra"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COMMENTS_VECTOR = """
    SELECT setweight(to_tsvector('public.hearth'::regconfig, coalesce(string_agg(c.body, ' '), '')), 'C')
    FROM (SELECT body FROM comments WHERE post_id = {post} AND deleted_at IS NULL
          ORDER BY created_at DESC LIMIT 100) AS c"""


def upgrade() -> None:
    op.execute("ALTER TABLE posts DROP COLUMN search_vector")  # drops ix_posts_search_vector with it
    op.execute("ALTER TABLE posts ADD COLUMN comments_vector tsvector")
    op.execute(f"""
        CREATE FUNCTION public.hearth_refresh_comments_vector() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE target uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.post_id ELSE NEW.post_id END;
        BEGIN
            UPDATE posts SET comments_vector = ({COMMENTS_VECTOR.format(post="target")}) WHERE id = target;
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER comments_search AFTER INSERT OR DELETE OR UPDATE OF body, deleted_at ON comments "
               "FOR EACH ROW EXECUTE FUNCTION public.hearth_refresh_comments_vector()")
    op.execute(f"UPDATE posts SET comments_vector = ({COMMENTS_VECTOR.format(post='posts.id')}) "
               "WHERE id IN (SELECT post_id FROM comments)")
    op.execute("ALTER TABLE posts ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
               "setweight(to_tsvector('public.hearth'::regconfig, coalesce(title, '')), 'A') || "
               "setweight(to_tsvector('public.hearth'::regconfig, body), 'B') || "
               "coalesce(comments_vector, ''::tsvector)) STORED")
    op.execute("CREATE INDEX ix_posts_search_vector ON posts USING gin (search_vector)")


def downgrade() -> None:
    op.execute("ALTER TABLE posts DROP COLUMN search_vector")
    op.execute("DROP TRIGGER comments_search ON comments")
    op.execute("DROP FUNCTION public.hearth_refresh_comments_vector()")
    op.execute("ALTER TABLE posts DROP COLUMN comments_vector")
    op.execute("ALTER TABLE posts ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
               "(setweight(to_tsvector('public.hearth'::regconfig, body), 'B')) STORED")
    op.execute("CREATE INDEX ix_posts_search_vector ON posts USING gin (search_vector)")
