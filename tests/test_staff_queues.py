"""Issue 12, point 4: work queues with promises, and a staff home page with the counts of each queue and of what is
late, per agency."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Household, InsuranceCertificate, Lease, PaymentStatus, PaymentTransaction, ReviewStatus, TenantRequest, utcnow,
)
from app.services import queues, requests
from app.services.queues import working_days_before

def test_working_days_skip_weekends_and_french_public_holidays():
    monday = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)
    assert working_days_before(monday, 1) == datetime(2026, 10, 30, 10, 0, tzinfo=timezone.utc)  # Friday
    assert working_days_before(monday, 2) == datetime(2026, 10, 29, 10, 0, tzinfo=timezone.utc)
    thursday = datetime(2026, 11, 12, 9, 30, tzinfo=timezone.utc)  # 11 November, a Wednesday, is closed
    assert working_days_before(thursday, 1) == datetime(2026, 11, 10, 9, 30, tzinfo=timezone.utc)


def waiting_certificates(demo, *ages: timedelta) -> list[InsuranceCertificate]:
    """Certificates sent by tenants and waiting for validation, sent `ages` ago (in two agencies' households)."""
    now, certificates = utcnow(), []
    for index, age in enumerate(ages):
        key = ("locataire", "retard", "other")[index % 3]
        lease = db.session.get(Lease, demo[f"{key}_lease"])
        certificates.append(InsuranceCertificate(
            household_id=lease.household_id, lease_id=lease.id, insurer="Assureur", policy_number=f"P{index}",
            start_date=now.date(), end_date=now.date() + timedelta(days=365), status=ReviewStatus.PENDING,
            created_at=now - age))
    db.session.add_all(certificates)
    db.session.commit()
    return certificates


def by_key(now):
    counts, agencies = queues.overview(now)
    return {queue.key: queue for queue in counts}, agencies


def test_counts_match_the_rows_and_lateness_follows_each_promise(app, demo):
    with app.app_context():
        waiting_certificates(demo, timedelta(hours=49), timedelta(hours=47), timedelta(hours=1))
        now = utcnow()  # 49 hours: past the 48-hour promise; 47 hours: not yet
        pending = db.session.scalars(sa.select(InsuranceCertificate).where(
            InsuranceCertificate.status == ReviewStatus.PENDING).order_by(InsuranceCertificate.created_at)).all()
        household = db.session.get(Household, demo["other"])
        db.session.add(PaymentTransaction(
            household_id=household.id, order_id="Q1", trans_id="000001", trans_day=now.date(), amount=10,
            currency="EUR", ctx_mode="TEST", status=PaymentStatus.REVIEW, review_reason="test",
            created_at=working_days_before(now, 3)))
        db.session.commit()
        found, agencies = by_key(now)
        assert found["insurance"].total == len(pending) and found["insurance"].late == 1
        assert found["insurance"].oldest == pending[0].created_at
        assert found["payments"].total == 1 and found["payments"].late == 1
        assert found["payments"].by_agency == {household.agency_id: (1, 1)}
        # requests: each category its own promise, counted from the rows themselves
        open_requests = db.session.scalars(sa.select(TenantRequest).where(
            TenantRequest.status.in_(requests.OPEN_STATUSES))).all()
        assert open_requests
        late = [r for r in open_requests
                if r.created_at < working_days_before(now, requests.handling_days(r.category))]
        assert (found["requests"].total, found["requests"].late) == (len(open_requests), len(late))
        per_agency = {}
        for request_ in open_requests:
            count, late_count = per_agency.get(request_.agency_id, (0, 0))
            per_agency[request_.agency_id] = (count + 1, late_count + (request_ in late))
        assert found["requests"].by_agency == per_agency
        assert sum(count for count, _ in found["insurance"].by_agency.values()) == found["insurance"].total
        assert {agency.id for agency in agencies} >= set(per_agency)


def test_the_staff_home_shows_each_queue_with_what_is_late(app, client_for, demo):
    with app.app_context():
        waiting_certificates(demo, timedelta(days=104), timedelta(hours=2))  # « 2 506 hours »: marked late
        expected, _ = by_key(utcnow())
    staff = client_for("gestionnaire@example.org")
    landing = staff.get("/")
    assert landing.status_code == 302 and landing.location.endswith("/agence/")
    page = staff.get("/agence/").get_data(as_text=True)
    row = page[page.index('id="queue-insurance"'):]
    row = row[:row.index("</tr>")]
    assert 'class="queue-late"' in page[page.index('id="queue-insurance"') - 40:page.index('id="queue-insurance"') + 60]
    assert f'<td class="queue-total">{expected["insurance"].total}</td>' in row
    assert f"<strong>{expected['insurance'].late}</strong>" in row and "en retard" in row
    for key in ("mandates", "requests", "payments", "rejects"):
        assert f'id="queue-{key}"' in page
    assert "/staffinsurancequeueview/list/" in row
    tenant = client_for("locataire@example.org")
    assert tenant.get("/agence/").status_code in (302, 403, 404)
