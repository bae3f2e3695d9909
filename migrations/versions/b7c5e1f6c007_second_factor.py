"""second factor: staff and admin accounts can protect their sign-in with a TOTP code

Revision ID: b7c5e1f6c007
Revises: a6b4d0e5b006
Create Date: 2026-11-26 02:00:00

"""
from alembic import op
import sqlalchemy as sa

import app.dbtypes


revision = 'b7c5e1f6c007'
down_revision = 'a6b4d0e5b006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('second_factor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('secret', app.dbtypes.EncryptedString(length=200), nullable=False),
    sa.Column('confirmed_at', app.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_step', sa.BigInteger(), nullable=True),
    sa.Column('created_at', app.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], name=op.f('fk_second_factor_user_id_ab_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_second_factor')),
    sa.UniqueConstraint('user_id', name=op.f('uq_second_factor_user_id'))
    )


def downgrade():
    op.drop_table('second_factor')
