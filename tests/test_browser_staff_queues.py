"""Browser journey of a gestionnaire (issue 12): from the work queues of /agence/ to each queue's list, oldest first
with « En attente depuis » and « en retard » past the promise (axe-core on each), then a filtered household list
exported as CSV (only the filtered rows, `;` between cells, a BOM for French Excel). Chromium, real CSP."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.extensions import db
from app.models import (
    CollectionStatus, DirectDebitCollection, DirectDebitMandate, Household, InsuranceCertificate, MandateStatus,
    PaymentStatus, PaymentTransaction, RequestCategory, RequestKind, RequestStatus, ReviewStatus, TenantRequest,
    utcnow,
)
from app.services.demo import client_number
from tests.browser import serious_violations, serve_demo, staff_page

pytestmark = pytest.mark.browser
ADD_FILTER = re.compile(r"^Ajouter un filt")
QUEUES = [
    ("Attestations d'assurance à valider", "staffinsurancequeueview"),
    ("Mandats à activer", "staffmandatequeueview"),
    ("Demandes en cours", "staffrequestqueueview"),
    ("Paiements par carte à vérifier", "staffpaymentreviewview"),
    ("Prélèvements rejetés à traiter", "staffrejectqueueview"),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The demo, plus one row past its promise in every queue (some queues are empty in the demo)."""
    with serve_demo(tmp_path_factory.mktemp("browser-queues"), 12) as served:
        with served[0].app_context():
            now = utcnow()
            household = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(3)))
            lease = household.leases[0]
            household.payment_incident = True
            mandate = DirectDebitMandate(
                reference="RUM-QUEUE-1", household_id=household.id, lease_id=lease.id,
                iban="FR7630004008190001234567879", account_holder="FILE ATTENTE", debit_day=7,
                status=MandateStatus.PENDING_SIGNATURE, created_at=now - timedelta(days=20))
            db.session.add(mandate)
            db.session.flush()
            db.session.add_all([
                InsuranceCertificate(
                    household_id=household.id, lease_id=lease.id, insurer="Mutuelle Ancienne", policy_number="Q1",
                    start_date=now.date(), end_date=now.date() + timedelta(days=365), status=ReviewStatus.PENDING,
                    created_at=now - timedelta(days=400)),
                TenantRequest(
                    number="Q-LIFT-OLD", household_id=household.id, agency_id=household.agency_id,
                    kind=RequestKind.TECHNICAL, category=RequestCategory.LIFT, subject="Ascenseur en panne",
                    description="Test", status=RequestStatus.SUBMITTED, created_at=now - timedelta(days=400)),
                PaymentTransaction(
                    household_id=household.id, order_id="Q-REVIEW-1", trans_id="000009", trans_day=now.date(),
                    amount=Decimal("10.00"), currency="978", ctx_mode="TEST", status=PaymentStatus.REVIEW,
                    review_reason="test", created_at=now - timedelta(days=20)),
                DirectDebitCollection(
                    mandate_id=mandate.id, household_id=household.id, lease_id=lease.id, period="2000-01",
                    amount=Decimal("300.00"), notified_amount=Decimal("300.00"), sequence_type="FRST",
                    end_to_end_id="Q-REJECT-1", collection_date=now.date() - timedelta(days=40),
                    status=CollectionStatus.REJECTED, rejected_on=now.date() - timedelta(days=30),
                    reject_reason="AM04"),
            ])
            db.session.commit()
        yield served


@pytest.mark.parametrize("label, endpoint", QUEUES)
def test_each_queue_lists_oldest_first_with_the_time_waiting(live, label, endpoint):
    _, server, browser = live
    page = staff_page(browser, server)
    try:
        page.get_by_role("link", name=label, exact=True).click()
        page.wait_for_url(f"**/{endpoint}/list/**")
        table = page.locator("table.table-bordered")
        expect(table.get_by_role("columnheader", name="En attente depuis")).to_be_visible()
        late = table.locator("strong.queue-late-mark")
        expect(late.first).to_have_text("en retard")  # words, not only a colour
        assert serious_violations(page) == []
    finally:
        page.close()


def test_a_filtered_household_list_exports_only_its_rows(live):
    application, server, browser = live
    with application.app_context():
        name = db.session.scalar(sa.select(Household.signatory_last_name)
                                 .where(Household.client_number == client_number(4)))
        expected = set(db.session.scalars(sa.select(Household.client_number)
                                          .where(Household.signatory_last_name.startswith(name))))
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Household))
    assert 0 < len(expected) < total
    page = staff_page(browser, server)
    try:
        page.goto(f"{server.url}/staffhouseholdview/list/")
        page.get_by_role("link", name="Rechercher").click()
        page.get_by_role("button", name=ADD_FILTER).click()
        page.locator("#filter_form .dropdown-menu").get_by_role("link", name="Nom du signataire", exact=True).click()
        page.get_by_role("textbox", name="Nom du signataire").fill(name)
        page.locator("#filter_form").get_by_role("button", name="Rechercher").click()
        page.wait_for_url(re.compile(r"_flt_0_signatory_last_name="))
        with page.expect_download() as info:
            page.get_by_role("link", name="Exporter (CSV)").click()
        raw = open(info.value.path(), "rb").read()
    finally:
        page.close()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM French Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:2] == ["Numéro client", "Nom du signataire"]
    assert {row[0] for row in rows[1:]} == expected and len(rows) - 1 == len(expected)
    assert all(row[1].startswith(name) for row in rows[1:])
