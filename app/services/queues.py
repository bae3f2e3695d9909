"""The staff work queues and their promises: what waits, for how long, and what is past its promise, per agency.

A queue is oldest first; a row is late once it has waited longer than its promise:
- insurance certificates to validate: 48 hours (`insurance.REVIEW_TARGET`, the promise made to tenants);
- mandates to activate (signed mandate expected, then activation): 5 working days;
- open requests: the handling time of their category shown to tenants (`requests.handling_days`), in working days;
- card payments to review: 2 working days;
- direct-debit rejects (the household is marked with a payment incident): 5 working days to contact the tenant.

Working days are French ones (weekends and public holidays, `holidays.France`). Each count is one grouped query per
queue (a handful in all), whatever the number of households.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import holidays
import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from app.extensions import db
from app.models import (
    Agency, CollectionStatus, DirectDebitCollection, DirectDebitMandate, Household, InsuranceCertificate,
    MandateStatus, PaymentStatus, PaymentTransaction, RequestCategory, ReviewStatus, TenantRequest,
)
from app.services import insurance, requests

MANDATE_DAYS = 5
PAYMENT_REVIEW_DAYS = 2
REJECT_DAYS = 5


def working_days_before(moment: datetime, days: int) -> datetime:
    """The same time of day `days` French working days before `moment`."""
    day, closed = moment.date(), holidays.France(years=range(moment.year - 1, moment.year + 1))
    while days > 0:
        day -= timedelta(days=1)
        if day.weekday() < 5 and day not in closed:
            days -= 1
    return datetime.combine(day, moment.timetz())


# --- the promise of each queue: when a row joined it and the moment before which it is late ----------------------

def insurance_cutoff(now: datetime) -> datetime:
    return now - insurance.REVIEW_TARGET


def mandate_cutoff(now: datetime) -> datetime:
    return working_days_before(now, MANDATE_DAYS)


def request_cutoff(now: datetime, category: RequestCategory) -> datetime:
    return working_days_before(now, requests.handling_days(category))


def payment_cutoff(now: datetime) -> datetime:
    return working_days_before(now, PAYMENT_REVIEW_DAYS)


def reject_cutoff(now: datetime) -> date:
    return working_days_before(now, REJECT_DAYS).date()


def waiting_since(row) -> datetime | date | None:
    """When `row` joined its queue (a date for a direct-debit reject); None when it is in no queue (a decided
    certificate, a closed request...)."""
    if isinstance(row, InsuranceCertificate):
        return row.created_at if row.status == ReviewStatus.PENDING else None
    if isinstance(row, DirectDebitMandate):
        return row.created_at if row.status == MandateStatus.PENDING_SIGNATURE else None
    if isinstance(row, TenantRequest):
        return row.created_at if row.status in requests.OPEN_STATUSES else None
    if isinstance(row, PaymentTransaction):
        return row.created_at if row.status == PaymentStatus.REVIEW else None
    if isinstance(row, DirectDebitCollection):
        waiting = row.status == CollectionStatus.REJECTED and row.household.payment_incident
        return row.rejected_on if waiting else None
    return None


def is_late(row, now: datetime) -> bool:
    """Whether `row` waits in its queue past the queue's promise: the rule `overview` counts with."""
    since = waiting_since(row)
    if since is None:
        return False
    if isinstance(row, InsuranceCertificate):
        return since < insurance_cutoff(now)
    if isinstance(row, DirectDebitMandate):
        return since < mandate_cutoff(now)
    if isinstance(row, TenantRequest):
        return since < request_cutoff(now, row.category)
    if isinstance(row, PaymentTransaction):
        return since < payment_cutoff(now)
    return since < reject_cutoff(now)  # a direct-debit reject


@dataclass
class QueueCounts:
    key: str
    label: str
    endpoint: str
    promise: str
    total: int = 0
    late: int = 0
    oldest: datetime | None = None
    by_agency: dict[int, tuple[int, int]] = field(default_factory=dict)  # agency id -> (count, late)


def _count(queue: QueueCounts, query) -> QueueCounts:
    """`query` selects (agency id, count, late, oldest) grouped by agency."""
    for agency_id, count, late, oldest in db.session.execute(query):
        queue.by_agency[agency_id] = (count, int(late or 0))
        queue.total += count
        queue.late += int(late or 0)
        if isinstance(oldest, date) and not isinstance(oldest, datetime):
            oldest = datetime.combine(oldest, time(), tzinfo=timezone.utc)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC values
        if oldest is not None and (queue.oldest is None or oldest < queue.oldest):
            queue.oldest = oldest
    return queue


def _late(condition) -> sa.ColumnElement:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _by_agency(agency_column, since, late, *in_queue, join=None) -> sa.Select:
    """(agency id, count, late, oldest) of the rows `in_queue`, grouped by agency; `join` reaches the household."""
    query = sa.select(agency_column, sa.func.count(), _late(late), sa.func.min(since))
    if join is not None:
        query = query.join(Household, Household.id == join)
    return query.where(*in_queue).group_by(agency_column)


def overview(now: datetime, agency_ids=None) -> tuple[list[QueueCounts], list[Agency]]:
    """Every queue with its counts (per agency, total, late, oldest); `agency_ids` (a collection of agency ids)
    limits them to these agencies."""
    def scope(column):
        return column.in_(agency_ids) if agency_ids is not None else sa.true()

    days = _l("%(days)s jours ouvrés", days=MANDATE_DAYS)
    late_request = sa.or_(*(sa.and_(TenantRequest.category == category,
                                    TenantRequest.created_at < request_cutoff(now, category))
                            for category in RequestCategory))
    queues = [
        (QueueCounts("insurance", _l("Attestations d'assurance à valider"), "StaffInsuranceQueueView.list",
                     _l("48 heures")),
         _by_agency(Household.agency_id, InsuranceCertificate.created_at,
                    InsuranceCertificate.created_at < insurance_cutoff(now),
                    InsuranceCertificate.status == ReviewStatus.PENDING, scope(Household.agency_id),
                    join=InsuranceCertificate.household_id)),
        (QueueCounts("mandates", _l("Mandats à activer"), "StaffMandateQueueView.list", days),
         _by_agency(Household.agency_id, DirectDebitMandate.created_at,
                    DirectDebitMandate.created_at < mandate_cutoff(now),
                    DirectDebitMandate.status == MandateStatus.PENDING_SIGNATURE, scope(Household.agency_id),
                    join=DirectDebitMandate.household_id)),
        (QueueCounts("requests", _l("Demandes en cours"), "StaffRequestQueueView.list",
                     _l("le délai de la catégorie (2 à 15 jours ouvrés)")),
         _by_agency(TenantRequest.agency_id, TenantRequest.created_at, late_request,
                    TenantRequest.status.in_(requests.OPEN_STATUSES), scope(TenantRequest.agency_id))),
        (QueueCounts("payments", _l("Paiements par carte à vérifier"), "StaffPaymentReviewView.list",
                     _l("%(days)s jours ouvrés", days=PAYMENT_REVIEW_DAYS)),
         _by_agency(Household.agency_id, PaymentTransaction.created_at,
                    PaymentTransaction.created_at < payment_cutoff(now),
                    PaymentTransaction.status == PaymentStatus.REVIEW, scope(Household.agency_id),
                    join=PaymentTransaction.household_id)),
        (QueueCounts("rejects", _l("Prélèvements rejetés à traiter"), "StaffRejectQueueView.list",
                     _l("%(days)s jours ouvrés", days=REJECT_DAYS)),
         _by_agency(Household.agency_id, DirectDebitCollection.rejected_on,
                    DirectDebitCollection.rejected_on < reject_cutoff(now),
                    DirectDebitCollection.status == CollectionStatus.REJECTED, Household.payment_incident.is_(True),
                    scope(Household.agency_id), join=DirectDebitCollection.household_id)),
    ]
    agencies = db.session.scalars(sa.select(Agency).where(scope(Agency.id)).order_by(Agency.name)).all()
    return [_count(queue, query) for queue, query in queues], agencies
