"""audit trail: every staff change to a household's data, who, when, before and after

Starts empty: changes made before this revision were not recorded.

Revision ID: a6b4d0e5b006
Revises: f5e3c9d4a005
Create Date: 2026-11-26 02:10:00

"""
from alembic import op
import sqlalchemy as sa

import app.dbtypes


revision = 'a6b4d0e5b006'
down_revision = 'f5e3c9d4a005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', app.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('entity_type', sa.String(length=60), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_audit_event_household_id_household')),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], name=op.f('fk_audit_event_user_id_ab_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_household_created', ['household_id', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_household_created')

    op.drop_table('audit_event')
