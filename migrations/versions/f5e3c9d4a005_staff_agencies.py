"""staff agencies: a chargé de clientèle sees the households of their agencies; headquarters staff see all

Existing staff keep what they had: every user with the `Staff` role gets the new landlord-wide role
`StaffLandlord`; an administrator then attaches agency staff to their agencies and takes that role away.

Revision ID: f5e3c9d4a005
Revises: f4d2b8c3e004
Create Date: 2026-11-26 01:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f5e3c9d4a005'
down_revision = 'f4d2b8c3e004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff_agency',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['agency.id'], name=op.f('fk_staff_agency_agency_id_agency'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], name=op.f('fk_staff_agency_user_id_ab_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_agency')),
    sa.UniqueConstraint('user_id', 'agency_id', name=op.f('uq_staff_agency_user_id'))
    )
    with op.batch_alter_table('staff_agency', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_agency_agency_id'), ['agency_id'], unique=False)
    connection = op.get_bind()
    staff = connection.execute(sa.text(
        "SELECT ab_user_role.user_id FROM ab_user_role JOIN ab_role ON ab_role.id = ab_user_role.role_id "
        "WHERE ab_role.name = 'Staff'")).scalars().all()
    if not staff:
        return
    role_id = connection.execute(sa.text("SELECT id FROM ab_role WHERE name = 'StaffLandlord'")).scalar()
    if role_id is None:
        connection.execute(sa.text("INSERT INTO ab_role (name) VALUES ('StaffLandlord')"))
        role_id = connection.execute(sa.text("SELECT id FROM ab_role WHERE name = 'StaffLandlord'")).scalar()
    for user_id in staff:
        connection.execute(sa.text("INSERT INTO ab_user_role (user_id, role_id) VALUES (:user, :role)"),
                           {"user": user_id, "role": role_id})


def downgrade():
    with op.batch_alter_table('staff_agency', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_agency_agency_id'))
    op.drop_table('staff_agency')
