"""Issue 12: each queue list oldest first, with the time waiting and the rows past their promise marked « en retard »,
by the same rule the staff home counts with (`queues.is_late`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Household, InsuranceCertificate, Lease, RequestCategory, RequestKind, RequestStatus, ReviewStatus, TenantRequest,
    utcnow,
)
from app.services import queues
from app.services.queues import working_days_before
from app.staff.views import waiting_time

LATE_MARK = '<strong class="queue-late-mark">en retard</strong>'
ROW_RE = re.compile(r"<tr\b.*?</tr>", re.S)


def rows_of(page: str, *markers: str) -> dict[str, tuple[int, str]]:
    """For each marker, (position among the list's rows, the row's HTML)."""
    rows = ROW_RE.findall(page)
    found = {}
    for marker in markers:
        matches = [(index, row) for index, row in enumerate(rows) if marker in row]
        assert len(matches) == 1, f"{marker!r}: {len(matches)} rows"
        found[marker] = matches[0]
    return found


def test_waiting_time_reads_in_plain_french(app):
    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    with app.test_request_context():
        assert waiting_time(now - timedelta(hours=3, minutes=59), now) == "3 h"
        assert waiting_time(now - timedelta(days=2, hours=4), now) == "2 j 4 h"
        assert waiting_time(now - timedelta(days=104, hours=5), now) == "104 j"
        assert waiting_time(now.date() - timedelta(days=6), now) == "6 j"


def test_certificate_list_marks_the_ones_past_48_hours_oldest_first(app, demo, client_for):
    with app.app_context():
        now = utcnow()
        lease = db.session.get(Lease, demo["locataire_lease"])
        certificates = [InsuranceCertificate(
            household_id=lease.household_id, lease_id=lease.id, insurer=insurer, policy_number=insurer,
            start_date=now.date(), end_date=now.date() + timedelta(days=365), status=ReviewStatus.PENDING,
            created_at=now - age) for insurer, age in (("Mutuelle Recente", timedelta(hours=2)),
                                                       ("Mutuelle Ancienne", timedelta(hours=49)))]
        db.session.add_all(certificates)
        db.session.commit()
        assert [queues.is_late(c, utcnow()) for c in certificates] == [False, True]
    page = client_for("gestionnaire@example.org").get(
        "/staffinsurancequeueview/list/?psize_StaffInsuranceQueueView=100")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "En attente depuis" in html
    rows = rows_of(html, "Mutuelle Ancienne", "Mutuelle Recente")
    (old_index, old_row), (new_index, new_row) = rows["Mutuelle Ancienne"], rows["Mutuelle Recente"]
    assert old_index < new_index  # oldest first
    assert "2 j 1 h" in old_row and LATE_MARK in old_row
    assert "2 h" in new_row and "en retard" not in new_row


def test_request_list_marks_the_ones_past_their_category_s_promise_oldest_first(app, demo, client_for):
    with app.app_context():
        now = utcnow()
        household = db.session.get(Household, demo["other"])
        five_days = working_days_before(now, 5) - timedelta(hours=1)
        made = [TenantRequest(
            number=number, household_id=household.id, agency_id=household.agency_id, kind=kind, category=category,
            subject=number, description="Test", status=status, created_at=created)
            for number, kind, category, status, created in (
                ("Q-FRESH", RequestKind.TECHNICAL, RequestCategory.LIFT, RequestStatus.SUBMITTED,
                 now - timedelta(hours=3)),
                ("Q-LIFT", RequestKind.TECHNICAL, RequestCategory.LIFT, RequestStatus.IN_PROGRESS, five_days),
                ("Q-ADMIN", RequestKind.ADMINISTRATIVE, RequestCategory.ADMIN_OTHER, RequestStatus.SUBMITTED,
                 five_days - timedelta(minutes=5)),
                ("Q-CLOSED", RequestKind.TECHNICAL, RequestCategory.LIFT, RequestStatus.CLOSED,
                 five_days - timedelta(minutes=10)),
            )]
        db.session.add_all(made)
        db.session.commit()
        # the rule of the list is the rule of the home page's counts
        open_requests = db.session.scalars(sa.select(TenantRequest).where(
            TenantRequest.status.in_(queues.requests.OPEN_STATUSES))).all()
        counts = {queue.key: queue for queue in queues.overview(utcnow())[0]}
        assert counts["requests"].late == sum(queues.is_late(r, utcnow()) for r in open_requests)
    html = client_for("gestionnaire@example.org").get(
        "/staffrequestview/list/?psize_StaffRequestView=100").get_data(as_text=True)
    rows = rows_of(html, "Q-CLOSED", "Q-ADMIN", "Q-LIFT", "Q-FRESH")
    order = sorted(rows, key=lambda number: rows[number][0])
    assert order == ["Q-CLOSED", "Q-ADMIN", "Q-LIFT", "Q-FRESH"]  # oldest first
    assert LATE_MARK in rows["Q-LIFT"][1]  # a lift: 2 working days promised
    assert "en retard" not in rows["Q-ADMIN"][1]  # an administrative request: 15 working days
    assert "en retard" not in rows["Q-FRESH"][1] and "3 h" in rows["Q-FRESH"][1]
    assert "en retard" not in rows["Q-CLOSED"][1]  # no longer waiting
