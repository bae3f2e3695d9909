"""server-side sessions: each signed-in browser has a row that logout revokes

Revision ID: e3c1a7a2d003
Revises: d2b0f6f1c002
Create Date: 2026-11-25 22:12:00

"""
from alembic import op
import sqlalchemy as sa

import app.dbtypes


revision = 'e3c1a7a2d003'
down_revision = 'd2b0f6f1c002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', app.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', app.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', app.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], name=op.f('fk_user_session_user_id_ab_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_session_token_hash'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index('ix_user_session_last_seen', ['last_seen_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)
    # Sessions opened before this revision carry no server-side id: they end at their next request (one sign-in).


def downgrade():
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))
        batch_op.drop_index('ix_user_session_last_seen')

    op.drop_table('user_session')
