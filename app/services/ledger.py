"""The rent account: the one place that sums ledger entries. Positive balance = the household owes money."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from app.extensions import db
from app.models import ZERO, Direction, LedgerEntry

SIGNED_AMOUNT = sa.case((LedgerEntry.direction == Direction.DEBIT, LedgerEntry.amount), else_=-LedgerEntry.amount)


def household_balance(household_id: int) -> Decimal:
    total = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(SIGNED_AMOUNT), 0)).where(LedgerEntry.household_id == household_id)
    )
    return Decimal(total).quantize(Decimal("0.01"))


def household_overdue(household_id: int, today: date) -> Decimal:
    """What is owed for debits already past their due date, after every credit received so far.

    Credits settle the oldest debits first, so the overdue amount is the balance less the debits not yet due.
    """
    not_yet_due = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.household_id == household_id,
            LedgerEntry.direction == Direction.DEBIT,
            LedgerEntry.due_date > today,
        )
    )
    overdue = household_balance(household_id) - Decimal(not_yet_due)
    return max(overdue, ZERO).quantize(Decimal("0.01"))
