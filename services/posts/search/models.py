"""Search columns and indexes on the content, people and groups tables (migrations 0006_search, 0008_search_content,
0014, 0015, 0016, 0020), and the hashtag counts typeahead reads (`search_tags`, kept by triggers: migration 0015).

The generated columns are added to the tables here, not mapped on the Post and Person classes: Alembic
sees them, while loading a post or a person never reads a document that only search queries need.
"""

from sqlalchemy import (
    Column,
    Computed,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from services.posts.content.models import HASHTAG_MAX, Post
from services.posts.db import metadata
from services.posts.groups.models import Group
from services.posts.people.api import Person

TS_CONFIG = "public.hearth"  # english stemming after unaccent (see the migration)

posts = Post.__table__
people = Person.__table__
groups = Group.__table__

# The folded text of the post's newest live comments, kept by a trigger on comments (migration 0008).
posts.append_column(Column("comments_vector", TSVECTOR))
# Weights: article title A, body B, comments C.
posts.append_column(Column("search_vector", TSVECTOR, Computed(
    "setweight(to_tsvector('public.hearth'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('public.hearth'::regconfig, body), 'B') || coalesce(comments_vector, ''::tsvector)",
    persisted=True)))
people.append_column(Column("search_text", Text, Computed(
    "public.hearth_person_document(display_name, handle, title, department, location, skills::text[])",
    persisted=True)))

# The document and the hashtags in one GIN index: a search with a tag filter intersects the word's and the
# tag's entries inside the index (migration 0020); conditions on the document alone use it too.
Index("ix_posts_search_hashtags", posts.c.search_vector, posts.c.hashtags, postgresql_using="gin")
# Tag suggestions read the newest live posts with hashtags (migration 0014).
Index("ix_posts_tagged_created", posts.c.created_at,
      postgresql_where=text("hashtags <> '{}' AND deleted_at IS NULL"))
Index("ix_people_search_text_trgm", people.c.search_text, postgresql_using="gin",
      postgresql_ops={"search_text": "gin_trgm_ops"})
Index("ix_groups_name_trgm", func.hearth_unaccent(func.lower(groups.c.name)).label("name_trgm"),
      postgresql_using="gin", postgresql_ops={"name_trgm": "gin_trgm_ops"})




def name_words(expr):
    """' ' + the folded text: `LIKE '% pre%'` finds a word starting with `pre` through its trigram index."""
    return literal_column("' '").op("||")(func.hearth_unaccent(func.lower(expr)))


# Typeahead: word prefixes of a person's name and handle (stored: ranking a thousand matches of a two-letter
# prefix must not fold each name again), of a group's name (migrations 0015, 0016).
people.append_column(Column("name_words", Text, Computed(
    "' ' || public.hearth_unaccent(lower(display_name || ' ' || handle))", persisted=True)))
PERSON_NAME_WORDS = people.c.name_words
GROUP_NAME_WORDS = name_words(groups.c.name)
Index("ix_people_name_words_trgm", people.c.name_words, postgresql_using="gin",
      postgresql_ops={"name_words": "gin_trgm_ops"})
Index("ix_groups_name_words_trgm", GROUP_NAME_WORDS.label("name_words"), _table=groups, postgresql_using="gin",
      postgresql_ops={"name_words": "gin_trgm_ops"})

# Per hashtag, the live posts every member may read that carry it, and those only some may read; kept by
# triggers on posts and people (migration 0015). The C collation makes `LIKE 'pre%'` a key range.
search_tags = Table(
    "search_tags", metadata,
    Column("tag", String(HASHTAG_MAX, collation="C"), primary_key=True),
    Column("open_posts", Integer, nullable=False, server_default="0"),
    Column("restricted_posts", Integer, nullable=False, server_default="0"),
)


def unaccented(expr):
    """The same folding the indexes use: lower-cased, accents removed."""
    return func.hearth_unaccent(func.lower(expr))

