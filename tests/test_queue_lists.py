"""Issue 12: each queue list oldest first, with the time waiting and the rows past their promise marked « en retard »,
by the same rule the staff home counts with (`queues.is_late`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Agency, CollectionStatus, DirectDebitCollection, DirectDebitMandate, Household, InsuranceCertificate, Lease,
    RequestCategory, RequestKind, RequestStatus, ReviewStatus, TenantRequest, utcnow,
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
    assert counts["requests"].late >= 1  # Q-LIFT at least
    staff = client_for("gestionnaire@example.org")
    html = staff.get("/staffrequestqueueview/list/?psize_StaffRequestQueueView=100").get_data(as_text=True)
    rows = rows_of(html, "Q-ADMIN", "Q-LIFT", "Q-FRESH")
    order = sorted(rows, key=lambda number: rows[number][0])
    assert order == ["Q-ADMIN", "Q-LIFT", "Q-FRESH"]  # the queue: oldest first
    assert "Q-CLOSED" not in html  # no longer waiting
    assert LATE_MARK in rows["Q-LIFT"][1]  # a lift: 2 working days promised
    assert "en retard" not in rows["Q-ADMIN"][1]  # an administrative request: 15 working days
    assert "en retard" not in rows["Q-FRESH"][1] and "3 h" in rows["Q-FRESH"][1]
    # the list of every request: newest first, a closed one never marked late
    html = staff.get("/staffrequestview/list/?psize_StaffRequestView=100").get_data(as_text=True)
    rows = rows_of(html, "Q-CLOSED", "Q-ADMIN", "Q-LIFT", "Q-FRESH")
    assert sorted(rows, key=lambda number: rows[number][0]) == ["Q-FRESH", "Q-LIFT", "Q-ADMIN", "Q-CLOSED"]
    assert "en retard" not in rows["Q-CLOSED"][1]


def home_link(client, key: str) -> str:
    """The list the staff home links the queue `key` to, with every row on one page."""
    page = client.get("/agence/").get_data(as_text=True)
    row = page[page.index(f'id="queue-{key}"'):]
    url = re.search(r'<a href="([^"]+)"', row[:row.index("</tr>")]).group(1)
    view = re.fullmatch(r"/(\w+)/list/", url).group(1)
    return f"{url}?psize_{view}=100"


def test_the_home_s_open_requests_link_lists_the_open_requests_only(app, demo, client_for):
    with app.app_context():
        household = db.session.get(Household, demo["other"])
        db.session.add_all([TenantRequest(
            number=number, household_id=household.id, agency_id=household.agency_id, kind=RequestKind.TECHNICAL,
            category=RequestCategory.LIFT, subject=number, description="Test", status=status,
            created_at=utcnow() - timedelta(days=30))
            for number, status in (("Q-WAITING", RequestStatus.WAITING_TENANT), ("Q-RESOLVED", RequestStatus.RESOLVED),
                                   ("Q-CLOSED", RequestStatus.CLOSED))])
        db.session.commit()
        counts = {queue.key: queue for queue in queues.overview(utcnow())[0]}
    staff = client_for("gestionnaire@example.org")
    html = staff.get(home_link(staff, "requests")).get_data(as_text=True)
    assert "En attente depuis" in html
    rows_of(html, "Q-WAITING")
    assert "Q-RESOLVED" not in html and "Q-CLOSED" not in html
    assert counts["requests"].total <= 100 and html.count(LATE_MARK) == counts["requests"].late  # the home's count


def reject_queue_rows(demo, *collections: tuple[str, CollectionStatus, int | None], key: str = "other",
                      incident: bool = True) -> None:
    """Debits of the household `key`, marked with a payment incident or not: (period, status, rejected so many days
    ago, or None for a reject with no date)."""
    today = utcnow().date()
    household = db.session.get(Household, demo[key])
    household.payment_incident = incident
    mandate = DirectDebitMandate(reference=f"RUM-Q-{key}", household_id=household.id, lease_id=demo[f"{key}_lease"],
                                 iban="FR7630004008190001234567879", account_holder="FILE ATTENTE", debit_day=7)
    db.session.add(mandate)
    db.session.flush()
    db.session.add_all([DirectDebitCollection(
        mandate_id=mandate.id, household_id=household.id, lease_id=demo[f"{key}_lease"], period=period,
        amount=Decimal("300.00"), notified_amount=Decimal("300.00"), sequence_type="RCUR",
        end_to_end_id=f"Q-{key}-{period}", collection_date=today - timedelta(days=60), status=status,
        rejected_on=None if days is None else today - timedelta(days=days),
        reject_reason="AM04" if status is CollectionStatus.REJECTED else None)
        for period, status, days in collections])
    db.session.commit()


def test_the_home_s_rejects_link_lists_the_rejects_still_to_handle_only(app, demo, client_for):
    with app.app_context():
        reject_queue_rows(demo, ("1999-01", CollectionStatus.REJECTED, 30), ("1999-02", CollectionStatus.REJECTED, 0),
                          ("1999-03", CollectionStatus.SETTLED, None))
        # a reject whose incident is over (the household is no longer marked): handled
        reject_queue_rows(demo, ("1999-04", CollectionStatus.REJECTED, 40), key="retard", incident=False)
        counts = {queue.key: queue for queue in queues.overview(utcnow())[0]}
    assert (counts["rejects"].total, counts["rejects"].late) == (2, 1)
    staff = client_for("gestionnaire@example.org")
    html = staff.get(home_link(staff, "rejects")).get_data(as_text=True)
    assert "En attente depuis" in html
    rows = rows_of(html, "1999-01", "1999-02")
    assert rows["1999-01"][0] < rows["1999-02"][0]  # oldest first
    assert LATE_MARK in rows["1999-01"][1] and "30 j" in rows["1999-01"][1]  # 5 working days promised
    assert "en retard" not in rows["1999-02"][1]
    assert "1999-03" not in html and "1999-04" not in html  # paid; an incident already handled
    assert html.count(LATE_MARK) == counts["rejects"].late


def test_the_new_queues_keep_a_staff_member_to_their_agency(app, demo, client_for):
    with app.app_context():
        elsewhere = db.session.get(Household, demo["retard"])  # moved to the Tours agency
        elsewhere.agency_id = db.session.scalar(sa.select(Agency.id).where(Agency.code == "AG-TRS"))
        for key, number in (("locataire", "Q-MINE"), ("retard", "Q-THEIRS")):
            household = db.session.get(Household, demo[key])
            db.session.add(TenantRequest(
                number=number, household_id=household.id, agency_id=household.agency_id,
                kind=RequestKind.TECHNICAL, category=RequestCategory.LIFT, subject=number, description="Test",
                status=RequestStatus.SUBMITTED, created_at=utcnow() - timedelta(days=3)))
        db.session.commit()
        reject_queue_rows(demo, ("1999-01", CollectionStatus.REJECTED, 3), key="locataire")
        reject_queue_rows(demo, ("1999-02", CollectionStatus.REJECTED, 3), key="retard")
    agent = client_for("agence@example.org")  # Staff, attached to the Orléans agency
    requests_page = agent.get(home_link(agent, "requests")).get_data(as_text=True)
    assert "Q-MINE" in requests_page and "Q-THEIRS" not in requests_page
    rejects_page = agent.get(home_link(agent, "rejects")).get_data(as_text=True)
    assert "1999-01" in rejects_page and "1999-02" not in rejects_page


def test_an_undated_reject_comes_after_the_dated_ones(app, demo, client_for):
    with app.app_context():  # SQLite puts NULL first in ascending order, PostgreSQL last: here last on both
        reject_queue_rows(demo, ("1999-01", CollectionStatus.REJECTED, None),
                          ("1999-02", CollectionStatus.REJECTED, 10), ("1999-03", CollectionStatus.REJECTED, 2))
    staff = client_for("gestionnaire@example.org")
    url = home_link(staff, "rejects")
    rows = rows_of(staff.get(url).get_data(as_text=True), "1999-01", "1999-02", "1999-03")
    assert sorted(rows, key=lambda period: rows[period][0]) == ["1999-02", "1999-03", "1999-01"]
    export = staff.get(url.replace("/list/", "/export/")).get_data(as_text=True)
    assert re.findall(r"1999-0[0-9]", export) == ["1999-02", "1999-03", "1999-01"]
