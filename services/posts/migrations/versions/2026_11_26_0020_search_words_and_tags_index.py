"""search: one GIN index over the document and the hashtags (replaces ix_posts_search_vector)

Revision ID: 0020_search_words_and_tags
Revises: 0019_post_edit_attachments
Create Date: 2026-11-26 07:00:00

A search with a tag filter built a bitmap of every index entry of the word (52,000 for a typed prefix at
1,000,000 posts) and another of the tag's (100,000), then ANDed them: ~40 ms of PostgreSQL CPU before a
row was read. With both columns in one GIN index, the scan intersects the word's and the tag's posting
lists inside the index and hands on only the posts that have both (5,000). A condition on the document
alone uses the same index as before (a multicolumn GIN index serves any subset of its columns), so it
replaces ix_posts_search_vector; ix_posts_hashtags (content's, the tag feed's) stays.
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0020_search_words_and_tags"
down_revision: Union[str, Sequence[str], None] = "0019_post_edit_attachments"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_posts_search_hashtags ON posts USING gin (search_vector, hashtags)")
    op.execute("DROP INDEX ix_posts_search_vector")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_posts_search_vector ON posts USING gin (search_vector)")
    op.execute("DROP INDEX ix_posts_search_hashtags")
