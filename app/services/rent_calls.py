"""The monthly rent call: one due notice (rent and charge provisions) per active lease and month, the housing
benefit the CAF pays for that month as a credit, the avis d'échéance document, and a mail to the households that
chose paperless delivery.

Set-based and idempotent: each step inserts only what is missing for the period (and the database refuses a second
due notice for a (lease, period)), so a re-run, or a run after a crash half-way, never doubles anything. The PDF
of each notice is rendered when first downloaded (see app.services.documents).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime

import sqlalchemy as sa
from flask_appbuilder.security.sqla.models import User
from flask_babel import force_locale, format_date

from app.extensions import db
from app.mail import external_url, queue_mail
from app.models import (
    Direction, Document, DocumentKind, EntryKind, Household, Lease, LedgerEntry, TenantAccount,
)

DUE_DAY = 10


def parse_period(text: str) -> date:
    """'YYYY-MM' -> the first day of that month (ValueError otherwise)."""
    year, month = text.split("-")
    if len(year) != 4 or len(month) != 2:
        raise ValueError(text)
    return date(int(year), int(month), 1)


def next_period(today: date) -> date:
    return date(today.year + (today.month == 12), today.month % 12 + 1, 1)


def call_rents(first_day: date, now: datetime) -> int:
    """Call the rents of the month starting `first_day`. Returns the number of due notices created."""
    period = f"{first_day:%Y-%m}"
    last_day = first_day.replace(day=calendar.monthrange(first_day.year, first_day.month)[1])
    with force_locale("fr"):
        month = format_date(first_day, "MMMM yyyy")
    active = sa.and_(Lease.start_date <= last_day, sa.or_(Lease.end_date.is_(None), Lease.end_date >= first_day))

    def missing(kind):
        return ~sa.exists().where(LedgerEntry.lease_id == Lease.id, LedgerEntry.period == period,
                                  LedgerEntry.kind == kind)

    columns = ["household_id", "lease_id", "kind", "direction", "amount", "rent_part", "charges_part", "label",
               "entry_date", "due_date", "period", "created_at"]
    notices = sa.select(
        Lease.household_id, Lease.id, sa.literal(EntryKind.DUE_NOTICE.name), sa.literal(Direction.DEBIT.name),
        Lease.rent + Lease.charges, Lease.rent, Lease.charges, sa.literal(f"Avis d'échéance {month}"),
        sa.literal(first_day), sa.literal(first_day.replace(day=DUE_DAY)), sa.literal(period), sa.literal(now),
    ).where(active, missing(EntryKind.DUE_NOTICE))
    created = len(db.session.execute(
        sa.insert(LedgerEntry).from_select(columns, notices).returning(LedgerEntry.id)).all())
    benefits = sa.select(
        Lease.household_id, Lease.id, sa.literal(EntryKind.HOUSING_BENEFIT.name), sa.literal(Direction.CREDIT.name),
        Lease.housing_benefit, sa.null(), sa.null(), sa.literal(f"APL versée par la CAF - {month}"),
        sa.literal(first_day), sa.null(), sa.literal(period), sa.literal(now),
    ).where(active, Lease.housing_benefit > 0, missing(EntryKind.HOUSING_BENEFIT))
    db.session.execute(sa.insert(LedgerEntry).from_select(columns, benefits))
    no_document = ~sa.exists().where(Document.lease_id == Lease.id, Document.period == period,
                                     Document.kind == DocumentKind.DUE_NOTICE)
    documents = sa.select(Lease.household_id, Lease.id, sa.literal(DocumentKind.DUE_NOTICE.name), sa.literal(period),
                          sa.literal(f"Avis d'échéance {month}"), sa.literal(now)).where(active, no_document)
    db.session.execute(sa.insert(Document).from_select(
        ["household_id", "lease_id", "kind", "period", "title", "created_at"], documents))
    if created:
        _mail_paperless(period, first_day, now)
    db.session.commit()
    return created


def _mail_paperless(period: str, first_day: date, now: datetime) -> None:
    """One mail to each paperless household that got a notice in this run (one query, then the mail queue)."""
    called_now = sa.exists().where(LedgerEntry.household_id == Household.id, LedgerEntry.period == period,
                                   LedgerEntry.kind == EntryKind.DUE_NOTICE, LedgerEntry.created_at == now)
    rows = db.session.execute(
        sa.select(Household.signatory_first_name, TenantAccount.locale, User.email)
        .join(TenantAccount, TenantAccount.household_id == Household.id)
        .join(User, User.id == TenantAccount.user_id)
        .where(Household.paperless_consent.is_(True), User.active.is_(True), called_now)).all()
    link = external_url("TenantDocumentsView.index")
    for first_name, locale, email in rows:
        with force_locale(locale):
            month = format_date(first_day, "MMMM yyyy")
        queue_mail(email, "due_notice", locale, name=first_name, month=month, link=link)
