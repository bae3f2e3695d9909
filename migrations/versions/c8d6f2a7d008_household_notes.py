"""household notes: staff write down a call, a visit or a payment promise on the household page

Revision ID: c8d6f2a7d008
Revises: b7c5e1f6c007
Create Date: 2026-11-26 04:00:00

"""
from alembic import op
import sqlalchemy as sa

import app.dbtypes


revision = 'c8d6f2a7d008'
down_revision = 'b7c5e1f6c007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('household_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('NOTE', 'PAYMENT_PROMISE', name='ck_household_note_kind', native_enum=False,
                              create_constraint=True, length=32), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('promised_amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('promised_on', sa.Date(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('promised_amount BETWEEN 0.01 AND 9999999999.99',
                       name=op.f('ck_household_note_promised_amount_range')),
    sa.ForeignKeyConstraint(['author_id'], ['ab_user.id'], name=op.f('fk_household_note_author_id_ab_user')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'],
                            name=op.f('fk_household_note_household_id_household')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household_note'))
    )
    op.create_index('ix_household_note_household_created', 'household_note', ['household_id', 'created_at'],
                    unique=False)


def downgrade():
    op.drop_index('ix_household_note_household_created', table_name='household_note')
    op.drop_table('household_note')
