"""The rent account: the one place that sums ledger entries. Positive balance = the household owes money."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from app.extensions import db
from app.models import ZERO, Direction, EntryKind, LedgerEntry

def cents(value) -> Decimal:
    """A database sum as exact cents: SQLite sums money as floats, and -0.00 reads badly on a page."""
    amount = Decimal(str(value or 0)).quantize(Decimal("0.01"))
    return amount if amount != 0 else ZERO


SIGNED_AMOUNT = sa.case((LedgerEntry.direction == Direction.DEBIT, LedgerEntry.amount), else_=-LedgerEntry.amount)


def household_balance(household_id: int) -> Decimal:
    total = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(SIGNED_AMOUNT), 0)).where(LedgerEntry.household_id == household_id)
    )
    return cents(total)


def lease_balance(lease_id: int) -> Decimal:
    total = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(SIGNED_AMOUNT), 0)).where(LedgerEntry.lease_id == lease_id))
    return cents(total)


CHUNK = 5000  # ids per IN list: SQLite and PostgreSQL both cap the parameters of one statement


def chunks(ids: list[int]):
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def lease_balances(lease_ids: list[int]) -> dict[int, Decimal]:
    """The balance of each lease, in one grouped query per 5,000 leases."""
    balances = {}
    for part in chunks(list(lease_ids)):
        rows = db.session.execute(sa.select(LedgerEntry.lease_id, sa.func.sum(SIGNED_AMOUNT))
                                  .where(LedgerEntry.lease_id.in_(part)).group_by(LedgerEntry.lease_id))
        balances.update({lease_id: cents(total) for lease_id, total in rows})
    return balances


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
    return max(household_balance(household_id) - cents(not_yet_due), ZERO)


TENANT_PAYMENT_KINDS = (EntryKind.CARD_PAYMENT, EntryKind.DIRECT_DEBIT, EntryKind.TRANSFER, EntryKind.CHEQUE)


@dataclass
class Settlement:
    """Part of a credit that paid a debit."""

    entry_date: date
    kind: EntryKind
    amount: Decimal


@dataclass
class MonthStatus:
    """What a lease owed for one month and what paid it: the basis of receipts (quittance or reçu)."""

    lease_id: int
    period: str
    due_date: date | None
    rent: Decimal
    charges: Decimal
    housing_benefit: Decimal = ZERO
    payments: list[Settlement] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.rent + self.charges

    @property
    def tenant_share(self) -> Decimal:
        return max(self.total - self.housing_benefit, ZERO)

    @property
    def paid_by_tenant(self) -> Decimal:
        return sum((p.amount for p in self.payments), ZERO)

    @property
    def outstanding(self) -> Decimal:
        return max(self.tenant_share - self.paid_by_tenant, ZERO)

    @property
    def settled(self) -> bool:
        """Fully paid: only then may a quittance be issued."""
        return self.outstanding == ZERO

    @property
    def receipt_kind(self) -> str | None:
        """'quittance' for a fully paid month, 'recu' for a partial payment, None when nothing was paid."""
        if self.settled:
            return "quittance"
        return "recu" if self.paid_by_tenant > ZERO else None


def lease_entries(lease_ids: list[int]) -> list[LedgerEntry]:
    """Every entry of these leases, oldest first (one indexed query)."""
    if not lease_ids:
        return []
    return list(db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.lease_id.in_(lease_ids))
                                   .order_by(LedgerEntry.lease_id, LedgerEntry.entry_date, LedgerEntry.id)))


def month_statuses(entries: list[LedgerEntry]) -> dict[tuple[int, str], MonthStatus]:
    """Settle each lease's debits with its credits, oldest debit first, and say how each month was paid.

    A housing-benefit credit pays the due notice of its own month; every other credit (payments, refunds) pays the
    oldest open debit, and money received in advance waits for the next debit. A credit that was reversed (a
    rejected or returned direct debit, a cancelled card payment) and its reversal pay nothing: that money never
    arrived, so no receipt may say it did.
    """
    statuses: dict[tuple[int, str], MonthStatus] = {}
    by_lease: dict[int, list[LedgerEntry]] = {}
    reversed_ids = {entry.reverses_id for entry in entries if entry.reverses_id}
    for entry in entries:
        if entry.reverses_id or entry.id in reversed_ids:
            continue
        by_lease.setdefault(entry.lease_id, []).append(entry)
    for lease_id, lease_entries_ in by_lease.items():
        open_debits: list[list] = []  # [remaining, MonthStatus | None]
        advance: list[Settlement] = []
        for entry in sorted(lease_entries_, key=lambda e: (e.entry_date, e.direction is Direction.CREDIT, e.id)):
            if entry.direction is Direction.DEBIT:
                status = None
                if entry.kind is EntryKind.DUE_NOTICE:
                    status = MonthStatus(lease_id, entry.period, entry.due_date, entry.rent_part or entry.amount,
                                         entry.charges_part or ZERO)
                    statuses[(lease_id, entry.period)] = status
                open_debits.append([entry.amount, status])
                advance = _pay(open_debits, advance)
                continue
            if entry.kind is EntryKind.HOUSING_BENEFIT and (lease_id, entry.period) in statuses:
                status = statuses[(lease_id, entry.period)]
                status.housing_benefit += entry.amount
                for debit in open_debits:
                    if debit[1] is status:
                        used = min(debit[0], entry.amount)
                        debit[0] -= used
                        if entry.amount > used:
                            advance.append(Settlement(entry.entry_date, entry.kind, entry.amount - used))
                        break
                else:
                    advance.append(Settlement(entry.entry_date, entry.kind, entry.amount))
            else:
                advance.append(Settlement(entry.entry_date, entry.kind, entry.amount))
            advance = _pay(open_debits, advance)
    return statuses


def _pay(open_debits: list[list], credits: list[Settlement]) -> list[Settlement]:
    """Apply credits to the oldest open debits; return what is left over."""
    left: list[Settlement] = []
    for credit in credits:
        amount = credit.amount
        for debit in open_debits:
            if amount <= 0:
                break
            if debit[0] <= 0:
                continue
            used = min(debit[0], amount)
            debit[0] -= used
            amount -= used
            if debit[1] is not None and credit.kind is not EntryKind.HOUSING_BENEFIT:
                debit[1].payments.append(Settlement(credit.entry_date, credit.kind, used))
        if amount > 0:
            left.append(Settlement(credit.entry_date, credit.kind, amount))
    open_debits[:] = [debit for debit in open_debits if debit[0] > 0]
    return left


def reverse(credit: LedgerEntry, kind: EntryKind, label: str, on: date, now: datetime,
            external_ref: str) -> LedgerEntry:
    """Cancel a credit whose money did not arrive or went back: a debit of the same amount that points to it (the
    database refuses a second reversal of one credit). The caller owns the transaction."""
    entry = LedgerEntry(household_id=credit.household_id, lease_id=credit.lease_id, kind=kind,
                        direction=Direction.DEBIT, amount=credit.amount, label=label[:200], entry_date=on, due_date=on,
                        period=credit.period, external_ref=external_ref[:80], reverses_id=credit.id, created_at=now)
    db.session.add(entry)
    return entry


@dataclass
class HistoryLine:
    entry: LedgerEntry
    debit: Decimal
    credit: Decimal
    balance: Decimal


def history(entries: list[LedgerEntry]) -> list[HistoryLine]:
    """Entries with debit, credit and the running balance after each, oldest first."""
    lines, balance = [], ZERO
    for entry in sorted(entries, key=lambda e: (e.entry_date, e.id)):
        balance += entry.signed_amount
        debit = entry.amount if entry.direction is Direction.DEBIT else ZERO
        credit = entry.amount if entry.direction is Direction.CREDIT else ZERO
        lines.append(HistoryLine(entry, debit, credit, balance))
    return lines


def balance_before(entries: list[LedgerEntry], lease_id: int, day: date, excluding_id: int) -> Decimal:
    """A lease's balance from the entries dated before `day` (for the "previous balance" of a due notice)."""
    return sum((e.signed_amount for e in entries
                if e.lease_id == lease_id and e.id != excluding_id and e.entry_date < day), ZERO)
