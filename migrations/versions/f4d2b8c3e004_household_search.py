"""household search: the terms staff find a household by, filled for every existing household

The terms are computed by `app.services.household_search.terms_of` from plain rows read here, in sets of 5,000
households (one multi-row insert per set).

Revision ID: f4d2b8c3e004
Revises: e3c1a7a2d003
Create Date: 2026-11-26 01:20:00

"""
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


revision = 'f4d2b8c3e004'
down_revision = 'e3c1a7a2d003'
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade():
    op.create_table('household_search_term',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('term', sa.String(length=120).with_variant(sa.String(length=120, collation='C'), 'postgresql'),
              nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'],
                            name=op.f('fk_household_search_term_household_id_household'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household_search_term'))
    )
    with op.batch_alter_table('household_search_term', schema=None) as batch_op:
        batch_op.create_index('ix_household_search_term_term', ['term', 'household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_household_search_term_household_id'), ['household_id'], unique=False)
    _fill()


def _fill():
    from app.services.household_search import terms_of

    connection = op.get_bind()
    table = sa.table('household_search_term', sa.column('household_id'), sa.column('term'))
    last = 0
    while True:
        households = connection.execute(sa.text(
            "SELECT id, client_number, signatory_first_name, signatory_last_name, email, phone, billing_street "
            "FROM household WHERE id > :last ORDER BY id LIMIT :batch"), {"last": last, "batch": BATCH}).all()
        if not households:
            return
        first, last = households[0].id, households[-1].id
        within = {"first": first, "last": last}
        people, leases, streets, emails = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list)
        for row in connection.execute(sa.text("SELECT household_id, first_name, last_name FROM occupant "
                                              "WHERE household_id BETWEEN :first AND :last"), within):
            people[row.household_id].append((row.first_name, row.last_name))
        for row in connection.execute(sa.text(
                "SELECT lease.household_id, lease.number, unit.street FROM lease JOIN unit ON unit.id = lease.unit_id "
                "WHERE lease.household_id BETWEEN :first AND :last"), within):
            leases[row.household_id].append(row.number)
            streets[row.household_id].append(row.street)
        for row in connection.execute(sa.text(
                "SELECT tenant_account.household_id, ab_user.email FROM tenant_account "
                "JOIN ab_user ON ab_user.id = tenant_account.user_id "
                "WHERE tenant_account.household_id BETWEEN :first AND :last"), within):
            emails[row.household_id].append(row.email)
        rows = []
        for h in households:
            terms = terms_of(h.client_number, [(h.signatory_first_name, h.signatory_last_name), *people[h.id]],
                             [h.email, *emails[h.id]], h.phone, [h.billing_street, *streets[h.id]], leases[h.id])
            rows += [{"household_id": h.id, "term": term} for term in sorted(terms)]
        if rows:
            connection.execute(table.insert(), rows)


def downgrade():
    with op.batch_alter_table('household_search_term', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_search_term_household_id'))
        batch_op.drop_index('ix_household_search_term_term')
    op.drop_table('household_search_term')
