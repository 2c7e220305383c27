"""people: one index for a department's directory page (lower(department), display_name, id)

The directory filters on lower(department) and pages by (display_name, id). With an index on each, a
department's page is either a walk of the name index that filters out other departments or a sort of
the whole department; this index serves the filter, the order and the keyset cursor at once, and its
prefix serves every lookup the lower(department) index did.

Revision ID: 0013_people_department_page
Revises: 0012_comment_group_mentions
Create Date: 2026-11-26 01:10:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0013_people_department_page'
down_revision: Union[str, Sequence[str], None] = '0012_comment_group_mentions'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index('ix_people_lower_department_display_name_id', 'people',
                    [sa.text('lower(department)'), 'display_name', 'id'])
    op.drop_index('ix_people_lower_department', table_name='people')


def downgrade() -> None:
    op.create_index('ix_people_lower_department', 'people', [sa.text('lower(department)')])
    op.drop_index('ix_people_lower_department_display_name_id', table_name='people')
