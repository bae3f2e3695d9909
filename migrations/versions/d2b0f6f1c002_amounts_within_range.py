"""amounts within range: money columns refuse what is not a finite amount of the column's size

Every `Numeric(12, 2)` column gets `ck_<table>_<column>_range`: at most 9 999 999 999,99 either way. PostgreSQL's
numeric(12, 2) already refuses infinity and 1e13, but takes NaN (which compares above every number, so it passed
`rent >= 0`); SQLite keeps whatever it is given (`inf` as a REAL, 1e13). The check refuses all of them on both.

Rows that would break the check (written before the forms checked amounts) stop the upgrade with their ids: they
need a person's decision, not a silent rewrite of a rent account.

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

BOUND = "9999999999.99"
MONEY_COLUMNS = {
    'lease': ['rent', 'charges', 'housing_benefit', 'deposit'],
    'ledger_entry': ['amount', 'rent_part', 'charges_part'],
    'direct_debit_batch': ['total'],
    'direct_debit_collection': ['amount', 'notified_amount'],
    'direct_debit_share': ['amount'],
    'payment_transaction': ['amount'],
    'charge_statement_line': ['building_expense', 'tenant_share', 'provisions_paid'],
}


def _condition(column):
    return f"{column} BETWEEN -{BOUND} AND {BOUND}"


def _refuse_rows_out_of_range():
    connection = op.get_bind()
    found = []
    for table, columns in MONEY_COLUMNS.items():
        for column in columns:
            rows = connection.execute(sa.text(
                f"SELECT id, {column} FROM {table} WHERE NOT ({_condition(column)}) ORDER BY id LIMIT 20")).all()
            found += [f"{table}.{column} id={row_id}: {value!r}" for row_id, value in rows]
    if found:
        raise RuntimeError("Some amounts are not finite or do not fit numeric(12, 2); correct or delete these rows, "
                           "then upgrade again:\n  " + "\n  ".join(found))


def upgrade():
    _refuse_rows_out_of_range()
    for table, columns in MONEY_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.create_check_constraint(f'ck_{table}_{column}_range', _condition(column))


def downgrade():
    for table, columns in MONEY_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_constraint(f'ck_{table}_{column}_range', type_='check')
