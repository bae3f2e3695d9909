"""Browser journeys of a chargé de clientèle (Gaston, gestionnaire@example.org) on the staff forms no other browser
test drives: a request assigned to a colleague and an internal note the tenant never sees (request desk), a direct
debit reject typed by hand (a refused date and code first), a ledger correction typed the French way (`abc` refused
first), the accounting export downloaded for a date range, and the card reconciliation. Each outcome is checked on
the page and in the database; Chromium, the portal's real CSP (no report, no script error), axe-core on each form
and on its error state."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_appbuilder.security.sqla.models import User
from playwright.sync_api import expect

from app import formatting
from app.extensions import db
from app.models import (
    CollectionStatus,
    DirectDebitBatch,
    DirectDebitCollection,
    DirectDebitMandate,
    Direction,
    EntryKind,
    EventKind,
    Household,
    LedgerEntry,
    MandateStatus,
    PaymentStatus,
    PaymentTransaction,
    RequestEvent,
    TenantRequest,
    utcnow,
)
from app.services import accounting, ledger
from app.services.demo import client_number
from tests.browser import serious_violations, serve_demo, staff_page
from tests.test_browser_tenant import sign_in

pytestmark = pytest.mark.browser
CSP = "Content Security Policy"
REJECT_E2E = "DESK-REJECT-1"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The demo, plus one direct debit sent to the bank (the demo has none) for the manual reject."""
    with serve_demo(tmp_path_factory.mktemp("browser-staff-desks"), 12) as served:
        application = served[0]
        with application.app_context():
            now = utcnow()
            tenant = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(0)))
            request = db.session.scalar(sa.select(TenantRequest).where(TenantRequest.household_id == tenant.id)
                                        .order_by(TenantRequest.id))
            debtor = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(2)))
            debtor.payment_incident = False
            lease = debtor.leases[0]
            mandate = DirectDebitMandate(
                reference="RUM-DESK-1", household_id=debtor.id, lease_id=lease.id,
                iban="FR7630004008190001234567879", account_holder="GUICHET REJET", debit_day=7,
                status=MandateStatus.ACTIVE, signed_on=now.date() - timedelta(days=90),
                created_at=now - timedelta(days=90))
            batch = DirectDebitBatch(
                collection_date=now.date() + timedelta(days=3), period="2099-01", debit_day=7, schema="CORE",
                message_id="DESK-MSG-1", count=1, total=Decimal("412.30"), stored_name="desk-test.xml",
                created_at=now - timedelta(days=4))
            db.session.add_all([mandate, batch])
            db.session.flush()
            collection = DirectDebitCollection(
                batch_id=batch.id, mandate_id=mandate.id, household_id=debtor.id, lease_id=lease.id,
                period="2099-01", amount=Decimal("412.30"), notified_amount=Decimal("412.30"), sequence_type="FRST",
                end_to_end_id=REJECT_E2E, collection_date=batch.collection_date,
                status=CollectionStatus.SUBMITTED, notified_at=now - timedelta(days=12))
            db.session.add(collection)
            db.session.commit()
            cheque = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(4)))
            application.config["desks"] = {
                "request": request.id, "request_number": request.number,
                "claire": db.session.scalar(sa.select(User.id).where(User.email == "agence@example.org")),
                "collection": collection.id, "debtor": debtor.id,
                "cheque": cheque.id, "cheque_client": cheque.client_number, "cheque_lease": cheque.leases[0].number,
            }
        yield served


@pytest.fixture
def gaston(live):
    """Gaston's page, its CSP reports and script errors collected: none allowed."""
    _, server, browser = live
    page = watched(staff_page(browser, server))
    yield page
    assert (page.csp, page.errors) == ([], [])
    page.close()


def desks(live) -> dict:
    return live[0].config["desks"]


def url(live, path: str) -> str:
    return live[1].url + path


def expect_flash(page, text: str) -> None:
    """The confirmation shown at the top of the page the form led to."""
    expect(page.locator(".alert", has_text=text)).to_be_visible()


def field_error(page, field_id: str) -> str:
    """The message shown right below a field, tied to it (aria-invalid, aria-describedby): waits for the answer."""
    field = page.locator(f"#{field_id}")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert f"{field_id}-error" in (field.get_attribute("aria-describedby") or "").split(), field_id
    return page.locator(f"#{field_id}-error").inner_text().strip()


def watched(page):
    """`page` with its CSP reports and script errors collected."""
    page.csp, page.errors = [], []
    page.on("console", lambda message: CSP in message.text and page.csp.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


# --- 1. the request desk ------------------------------------------------------------------------------------------

def test_a_request_is_assigned_to_a_colleague(live, gaston):
    application, ids = live[0], desks(live)
    gaston.goto(url(live, f"/agence/demandes/{ids['request']}"))
    assert ids["request_number"] in gaston.locator("h1").inner_text()
    assert serious_violations(gaston) == []
    assign = gaston.locator("section", has=gaston.get_by_role("heading", name="Attribution"))
    assign.get_by_label("Attribuée à").select_option(label="Claire Conseillère")
    assign.get_by_role("button", name="Attribuer").click()
    expect_flash(gaston, "Attribution enregistrée.")
    expect(gaston.get_by_label("Attribuée à")).to_have_value(str(ids["claire"]))  # the desk shows it back
    with application.app_context():
        assert db.session.get(TenantRequest, ids["request"]).assigned_to_id == ids["claire"]


def _internal_notes(application, request_id: int) -> int:
    with application.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(RequestEvent).where(
            RequestEvent.request_id == request_id, RequestEvent.kind == EventKind.INTERNAL_NOTE))


def test_an_internal_note_stays_with_the_staff(live, gaston):
    application, server, browser = live
    ids = desks(live)
    note = "Locataire déjà relancé deux fois : prévoir un passage du gardien."
    notes_before = _internal_notes(application, ids["request"])
    gaston.goto(url(live, f"/agence/demandes/{ids['request']}"))
    # an empty note first: refused next to its field, nothing written
    gaston.get_by_label("Note interne (jamais montrée au locataire)").check()
    gaston.get_by_role("button", name="Envoyer", exact=True).click()
    assert field_error(gaston, "reply-body") == "Ce champ est obligatoire."
    expect(gaston.get_by_label("Note interne (jamais montrée au locataire)")).to_be_checked()  # kept for the retry
    assert serious_violations(gaston) == []
    assert _internal_notes(application, ids["request"]) == notes_before

    gaston.get_by_label("Message", exact=True).fill(note)
    gaston.get_by_role("button", name="Envoyer", exact=True).click()
    gaston.wait_for_url(f"**/agence/demandes/{ids['request']}")
    expect_flash(gaston, "Note interne enregistrée.")
    entry = gaston.locator("ol.timeline > li.internal", has_text=note)
    expect(entry).to_have_count(1)
    assert "note interne" in entry.inner_text()
    with application.app_context():
        event = db.session.scalar(sa.select(RequestEvent).where(RequestEvent.request_id == ids["request"],
                                                                RequestEvent.body == note))
        assert event.kind is EventKind.INTERNAL_NOTE and event.author.email == "gestionnaire@example.org"

    tenant = watched(sign_in(browser, server, "locataire@example.org"))
    try:
        tenant.goto(f"{server.url}/demandes/{ids['request']}")
        assert ids["request_number"] in tenant.locator("main").inner_text()  # her request, its timeline...
        assert "prévoir un passage du gardien" not in tenant.locator("body").inner_text()  # ...without the note
        assert (tenant.csp, tenant.errors) == ([], [])
    finally:
        tenant.close()
    assert _internal_notes(application, ids["request"]) == notes_before + 1


# --- 2. a direct debit reject typed by hand -----------------------------------------------------------------------

def _collection(application, collection_id: int) -> tuple[DirectDebitCollection, bool]:
    with application.app_context():
        collection = db.session.get(DirectDebitCollection, collection_id)
        db.session.expunge(collection)
        return collection, db.session.get(Household, collection.household_id).payment_incident


def test_a_direct_debit_reject_typed_from_the_bank_s_notice(live, gaston):
    application, ids = live[0], desks(live)
    gaston.goto(url(live, "/staffdirectdebitcollectionview/list/"))
    row = gaston.locator("table.table-bordered > tbody > tr", has_text=REJECT_E2E)
    expect(row).to_contain_text("Envoyé à la banque")
    row.get_by_role("link", name="Enregistrer un rejet").click()
    gaston.wait_for_url(f"**/agence/mandats/prelevement/{ids['collection']}/rejet")
    expect(gaston.locator("h1")).to_have_text("Enregistrer un rejet de prélèvement")
    expect(gaston.get_by_text("RUM-DESK-1")).to_be_visible()
    assert serious_violations(gaston) == []
    reason, day = gaston.get_by_label("Code motif du rejet"), gaston.get_by_label("Date du rejet")
    submit = gaston.get_by_role("button", name="Enregistrer le rejet")

    # no date: refused next to the date, nothing recorded
    reason.fill("AM04")
    day.fill("")
    submit.click()
    assert field_error(gaston, "rejected_on") == "Saisissez une date valide."
    assert serious_violations(gaston) == []
    # a code that is not the rulebook's (a key too many): refused next to the code, not cut to AM04
    reason.fill("AM04X")
    day.fill(utcnow().date().isoformat())
    submit.click()
    assert field_error(gaston, "reason").startswith("« AM04X » n'est pas un code motif de rejet SEPA.")
    expect(reason).to_have_value("AM04X")  # what was typed stays, to be corrected
    assert serious_violations(gaston) == []
    collection, incident = _collection(application, ids["collection"])
    assert (collection.status, collection.rejected_on, incident) == (CollectionStatus.SUBMITTED, None, False)

    reason.fill("AM04")
    submit.click()
    gaston.wait_for_url("**/staffdirectdebitcollectionview/list/**")
    expect_flash(gaston, "Rejet enregistré : le locataire est prévenu par e-mail et invité à payer en ligne.")
    row = gaston.locator("table.table-bordered > tbody > tr", has_text=REJECT_E2E)
    expect(row).to_contain_text("Rejeté")
    expect(row).to_contain_text("AM04")
    collection, incident = _collection(application, ids["collection"])
    assert collection.status is CollectionStatus.REJECTED
    assert (collection.reject_reason, collection.rejected_on) == ("AM04", utcnow().date())
    assert incident is True


# --- 3. a ledger correction through the generated form -------------------------------------------------------------

def _entries(application, household_id: int, label: str) -> list[LedgerEntry]:
    with application.app_context():
        entries = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.household_id == household_id,
                                                                  LedgerEntry.label == label)).all()
        db.session.expunge_all()
        return entries


def _balance(application, household_id: int) -> Decimal:
    with application.app_context():
        return ledger.household_balance(household_id)


def test_a_ledger_correction_typed_the_french_way(live, gaston):
    application, ids = live[0], desks(live)
    label = "Chèque n° 4521 remis à l'agence"
    before = _balance(application, ids["cheque"])
    gaston.get_by_role("link", name="Comptabilité").click()
    gaston.get_by_role("link", name="Écritures").click()
    gaston.wait_for_url("**/staffledgerentryview/list/**")
    gaston.get_by_role("link", name="Ajouter").click()  # FAB's « + » button
    gaston.wait_for_url("**/staffledgerentryview/add")
    assert serious_violations(gaston) == []
    form = gaston.locator("form#model_form")
    form.get_by_label("Numéro client").fill(ids["cheque_client"])
    form.get_by_label("Numéro de contrat (6 chiffres)").fill(ids["cheque_lease"])
    form.get_by_label("Type").select_option(label="Chèque")
    form.get_by_label("Sens").select_option(label="Crédit")
    form.get_by_label("Montant").fill("abc")
    form.get_by_label("Libellé").fill(label)
    day = form.get_by_role("textbox", name="Date *", exact=True)
    # Set whole, as autofill or dictation would (Playwright's fill(), no keystroke): the calendar takes that date
    # instead of putting back its own (none) when it closes.
    day.click()
    day.fill(utcnow().date().isoformat())
    expect(gaston.locator(".datepicker-dropdown")).to_be_visible()
    assert serious_violations(gaston) == []  # the calendar open: its other months' days were too pale
    gaston.keyboard.press("Escape")
    expect(day).to_have_value(utcnow().date().isoformat())
    form.get_by_role("button", name="Enregistrer").click()
    assert field_error(gaston, "amount") == "Saisissez un montant en euros, par exemple 125,50."
    assert form.locator("[aria-invalid=true]").count() == 1  # the amount only: the rest was right
    expect(form.get_by_label("Libellé")).to_have_value(label)  # the rest of the form is kept
    assert serious_violations(gaston) == []
    assert _entries(application, ids["cheque"], label) == []
    assert _balance(application, ids["cheque"]) == before

    form.get_by_label("Montant").fill("50,00")
    form.get_by_role("button", name="Enregistrer").click()
    gaston.wait_for_url("**/staffledgerentryview/list/**")  # back where the staff member came from
    expect_flash(gaston, "Ligne ajoutée")  # Flask-AppBuilder's « Added Row »
    expect(gaston.locator("table.table-bordered > tbody > tr", has_text=label)).to_contain_text("-50,00")
    [entry] = _entries(application, ids["cheque"], label)
    assert (entry.kind, entry.direction, entry.amount) == (EntryKind.CHEQUE, Direction.CREDIT, Decimal("50.00"))
    assert entry.entry_date == utcnow().date()
    assert _balance(application, ids["cheque"]) == before - Decimal("50.00")


# --- 4. the accounting export --------------------------------------------------------------------------------------

def test_the_accounting_export_for_a_date_range(live, gaston):
    application = live[0]
    end = utcnow().date()
    start = end - timedelta(days=90)
    gaston.goto(url(live, "/agence/export-comptable/"))
    assert serious_violations(gaston) == []
    start_box, end_box = gaston.get_by_label("Date de début"), gaston.get_by_label("Date de fin")
    download = gaston.get_by_role("button", name="Télécharger le fichier CSV")
    # the dates the wrong way round: refused next to the start date, no file
    start_box.fill(end.isoformat())
    end_box.fill(start.isoformat())
    download.click()
    assert field_error(gaston, "du") == "La date de début doit être antérieure ou égale à la date de fin."
    assert serious_violations(gaston) == []

    start_box.fill(start.isoformat())
    end_box.fill(end.isoformat())
    with gaston.expect_download() as info:
        download.click()
    assert info.value.suggested_filename == accounting.filename(start, end)
    raw = info.value.path().read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert tuple(rows[0]) == accounting.COLUMNS
    with application.app_context():
        expected = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(
            LedgerEntry.kind.in_(tuple(accounting.NATURES)), LedgerEntry.entry_date.between(start, end)))
    assert len(rows) - 1 == expected >= 1
    assert all(start.isoformat() <= row[0] <= end.isoformat() and row[3] in accounting.NATURES.values()
               for row in rows[1:])


# --- 5. the card reconciliation ------------------------------------------------------------------------------------

def test_the_card_reconciliation_matches_the_paid_transactions(live, gaston):
    application = live[0]
    gaston.get_by_role("link", name="Comptabilité").click()
    gaston.get_by_role("link", name="Rapprochement carte").click()
    gaston.wait_for_url("**/staffreconciliationview/**")
    assert serious_violations(gaston) == []
    first = (utcnow().date().replace(day=1) - timedelta(days=1)).replace(day=1)  # last month: a whole one
    gaston.get_by_label("Mois").fill(f"{first:%Y-%m}")
    gaston.get_by_role("button", name="Afficher").click()
    gaston.wait_for_url(f"**/staffreconciliationview/?mois={first:%Y-%m}")
    with application.app_context():
        count, total = db.session.execute(
            sa.select(sa.func.count(PaymentTransaction.id), sa.func.sum(PaymentTransaction.amount)).where(
                PaymentTransaction.status == PaymentStatus.PAID, PaymentTransaction.trans_day >= first,
                PaymentTransaction.trans_day < (first + timedelta(days=32)).replace(day=1))).one()
    assert count >= 1
    with application.test_request_context():
        shown_total = formatting.money(ledger.cents(total))  # « 767,33 € », as the page writes amounts
    assert gaston.locator("table tfoot td").all_inner_texts() == [str(count), shown_total]
    assert serious_violations(gaston) == []
