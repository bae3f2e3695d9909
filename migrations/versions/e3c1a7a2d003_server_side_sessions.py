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
    pass


def downgrade():
    pass
