"""secrets at rest: bank details encrypted, sent mail without links

Revision ID: c1a0e5e0b001
Revises: bc873aba3028
Create Date: 2026-11-25 22:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c1a0e5e0b001'
down_revision = 'bc873aba3028'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
