"""search: unaccent + pg_trgm, the hearth text search configuration, tsvector and trigram indexes

Revision ID: 0006_search
Revises: 0005_merge
Create Date: 2026-11-25 21:40:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = "0006_search"
down_revision: Union[str, Sequence[str], None] = "0005_merge"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # English stemming after accents are folded: "café" finds "cafe", "deploys" finds "deployment".
    op.execute("CREATE TEXT SEARCH CONFIGURATION public.hearth (COPY = pg_catalog.english)")
    op.execute("ALTER TEXT SEARCH CONFIGURATION public.hearth ALTER MAPPING FOR hword, hword_part, word "
               "WITH public.unaccent, english_stem")
    # unaccent() is only STABLE (its dictionary could change); generated columns and index expressions
    # need IMMUTABLE, so a wrapper naming the dictionary explicitly (the documented workaround).
    op.execute("""
        CREATE FUNCTION public.hearth_unaccent(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$""")
    op.execute("""
        CREATE FUNCTION public.hearth_person_document(display_name text, handle text, title text, department text,
                                                      location text, skills text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT lower(public.hearth_unaccent(concat_ws(' ', display_name, handle, title, department, location,
                                                           array_to_string(skills, ' ')))) $$""")
    op.execute("ALTER TABLE posts ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
               "(setweight(to_tsvector('public.hearth'::regconfig, body), 'B')) STORED")
    op.execute("CREATE INDEX ix_posts_search_vector ON posts USING gin (search_vector)")
    op.execute("ALTER TABLE people ADD COLUMN search_text text GENERATED ALWAYS AS "
               "(public.hearth_person_document(display_name, handle, title, department, location, skills::text[])) "
               "STORED")
    op.execute("CREATE INDEX ix_people_search_text_trgm ON people USING gin (search_text gin_trgm_ops)")
    op.execute("CREATE INDEX ix_groups_name_trgm ON groups USING gin "
               "(public.hearth_unaccent(lower(name)) gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_groups_name_trgm")
    op.execute("ALTER TABLE people DROP COLUMN search_text")
    op.execute("ALTER TABLE posts DROP COLUMN search_vector")
    op.execute("DROP FUNCTION public.hearth_person_document(text, text, text, text, text, text[])")
    op.execute("DROP FUNCTION public.hearth_unaccent(text)")
    op.execute("DROP TEXT SEARCH CONFIGURATION public.hearth")
