"""person handles (for @mentions in messages)

Revision ID: 0006_person_handles
Revises: 0005_messaging_attachments
Create Date: 2026-11-26 00:50:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel column types)


revision: str = '0006_person_handles'
down_revision: Union[str, Sequence[str], None] = '0005_messaging_attachments'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('person_handles',
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('handle', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_person_handles'))
    )
    op.create_index(op.f('ix_person_handles_handle'), 'person_handles', ['handle'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_person_handles_handle'), table_name='person_handles')
    op.drop_table('person_handles')
