"""Browser journey on the household page (issue 12, point 2), as Claire, chargée de clientèle of the Orléans agency:
she finds a household from the search box, reads it on one screen, and takes each action from there with its
confirmation: a payment promise (and a note refused next to its field), a PDF attached for the tenant, a request
opened on the tenant's behalf, the activation e-mail sent again, the account disabled after a confirmation page.
Chromium, the portal's real CSP (no report, no script error), axe-core on each state."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Household, HouseholdNote, LedgerEntry, NoteKind, OutgoingMail, TenantAccount, TenantRequest,
)
from app.services.demo import client_number
from tests.browser import serious_violations, serve_demo, staff_page
from tests.samples import pdf_bytes

pytestmark = pytest.mark.browser
AGENT = "agence@example.org"
CSP = "Content Security Policy"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-household"), 12) as served:
        application = served[0]
        with application.app_context():
            arrears = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(1)))
            pending = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(0)))
            pending.account.activated_at = None  # registered, e-mail not opened yet
            db.session.commit()
            application.config["journey"] = {"arrears": arrears.id, "arrears_client": arrears.client_number,
                                              "pending": pending.id}
        yield served


@pytest.fixture
def claire(live):
    _, server, browser = live
    page = staff_page(browser, server, AGENT)
    page.csp, page.errors = [], []
    page.on("console", lambda message: CSP in message.text and page.csp.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    assert (page.csp, page.errors) == ([], [])
    page.close()


def household_url(live, key: str) -> str:
    application, server, _ = live
    return f"{server.url}/agence/foyers/{application.config['journey'][key]}"


def flash(page) -> str:
    return page.locator(".alert").first.inner_text()


def test_the_search_box_lands_on_the_household_page(live, claire):
    journey = live[0].config["journey"]
    box = claire.get_by_role("searchbox", name="Rechercher un foyer : numéro client, contrat, nom, e-mail, "
                                                "téléphone ou rue")
    box.fill(journey["arrears_client"])
    box.press("Enter")
    claire.wait_for_url(f"**/agence/foyers/{journey['arrears']}")
    assert claire.locator("h1").inner_text().startswith(f"Foyer {journey['arrears_client']}")
    for heading in ("Signataire", "Contrats et logements", "Occupants", "Espace locataire", "Compte du locataire",
                    "Notes et promesses de paiement", "Demandes", "Documents", "Assurance et moyens de paiement",
                    "Historique"):
        assert claire.get_by_role("heading", name=heading, exact=True).is_visible(), heading
    assert "Impayé" in claire.locator(".household-head").inner_text()  # the arrears show at the top
    assert serious_violations(claire) == []


def test_a_payment_promise_then_a_note_refused_next_to_its_field(live, claire):
    application = live[0]
    claire.goto(household_url(live, "arrears"))
    claire.get_by_text("Ajouter une note ou une promesse de paiement").click()
    claire.get_by_label("Type de note").select_option(label="Promesse de paiement")
    claire.get_by_label("Note", exact=True).fill("Appel : versera 80 € par virement.")
    claire.get_by_label("Montant promis").fill("80,00")
    due = date.today() + timedelta(days=7)
    claire.get_by_label("Payé au plus tard le").fill(due.isoformat())
    claire.get_by_role("button", name="Enregistrer la note").click()
    claire.wait_for_url("**#notes")
    assert "Promesse de paiement enregistrée." in flash(claire)
    notes = claire.locator(".household-notes").inner_text()
    assert f"80,00\u00a0€ au plus tard le {due:%d/%m/%Y} :" in notes and "en cours" in notes
    assert "Claire Conseillère" in notes
    # an empty note: the form comes back open, the message next to the field, nothing written
    claire.get_by_text("Ajouter une note ou une promesse de paiement").click()
    claire.get_by_role("button", name="Enregistrer la note").click()
    claire.wait_for_load_state("load")
    assert claire.locator("#note-body-error").inner_text() == "Ce champ est obligatoire."
    assert claire.get_by_label("Note", exact=True).get_attribute("aria-invalid") == "true"
    assert serious_violations(claire) == []
    with application.app_context():
        kinds = db.session.scalars(sa.select(HouseholdNote.kind).where(
            HouseholdNote.household_id == application.config["journey"]["arrears"],
            HouseholdNote.author_id.is_not(None))).all()
        assert kinds == [NoteKind.PAYMENT_PROMISE]


def test_a_pdf_attached_for_the_tenant(live, claire):
    claire.goto(household_url(live, "arrears"))
    claire.get_by_text("Joindre un document").click()
    claire.get_by_label("Titre vu par le locataire").fill("Plan d'apurement signé")
    claire.get_by_label("Fichier PDF").set_input_files(
        {"name": "plan.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes()})
    claire.get_by_role("button", name="Joindre le document").click()  # not confirmed yet
    claire.wait_for_load_state("load")
    assert claire.locator("#document-confirm-error").inner_text() == "Cochez la case pour confirmer."
    claire.get_by_label("Fichier PDF").set_input_files(
        {"name": "plan.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes()})
    claire.get_by_label("Je confirme : ce document concerne ce foyer").check()
    claire.get_by_role("button", name="Joindre le document").click()
    claire.wait_for_url("**#documents")
    assert "Document « Plan d'apurement signé » ajouté à l'espace du locataire." in flash(claire)
    with claire.expect_download() as download:
        claire.get_by_role("link", name="Plan d'apurement signé").click()
    assert download.value.path().read_bytes() == pdf_bytes()


def test_a_request_opened_for_the_tenant(live, claire):
    application = live[0]
    claire.goto(household_url(live, "arrears"))
    claire.get_by_text("Ouvrir une demande pour le locataire").click()
    claire.get_by_label("Type de demande").select_option(label="Technique - Chauffage")
    claire.get_by_label("Objet").fill("Radiateur froid")
    claire.get_by_label("Description").fill("Appel du locataire : le radiateur de la chambre reste froid.")
    claire.get_by_role("button", name="Ouvrir la demande").click()
    claire.wait_for_url("**/agence/demandes/**")
    assert "ouverte pour le locataire ; il est prévenu par e-mail." in flash(claire)
    with application.app_context():
        request = db.session.scalar(sa.select(TenantRequest).where(TenantRequest.subject == "Radiateur froid"))
        assert request.household_id == application.config["journey"]["arrears"]
    assert request.number in claire.locator("h1").inner_text()


def test_the_activation_e_mail_again_then_the_account_disabled_after_confirming(live, claire):
    application = live[0]
    claire.goto(household_url(live, "pending"))
    claire.get_by_role("button", name="Renvoyer l'e-mail d'activation").click()
    claire.wait_for_url("**#account")
    assert "E-mail d'activation renvoyé à locataire@example.org." in flash(claire)
    with application.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutgoingMail).where(
            OutgoingMail.recipient == "locataire@example.org")) == 1
    claire.get_by_role("link", name="Désactiver le compte…").click()
    assert claire.locator("#confirm-title").inner_text() == "Désactiver le compte de Madame Léa Martin ?"
    assert serious_violations(claire) == []
    claire.get_by_role("link", name="Non, revenir au foyer").click()  # changed her mind: nothing happens
    claire.wait_for_url("**#account")
    claire.get_by_role("link", name="Désactiver le compte…").click()
    claire.get_by_role("button", name="Oui, désactiver le compte").click()
    claire.wait_for_url("**#account")
    assert "Compte désactivé" in flash(claire)
    assert "Désactivé" in claire.locator("#account").inner_text()
    assert claire.get_by_role("link", name="Désactiver le compte…").count() == 0
    with application.app_context():
        account = db.session.scalar(sa.select(TenantAccount).where(
            TenantAccount.household_id == application.config["journey"]["pending"]))
        assert not account.user.active
    claire.get_by_role("link", name="Historique", exact=True).click()
    history = claire.locator("#history").inner_text()
    assert "Compte de l'espace locataire désactivé : locataire@example.org" in history
    assert "E-mail d'activation renvoyé à locataire@example.org" in history
    claire.get_by_role("link", name="Tout l'historique du foyer").click()  # the whole history, filtered list
    claire.wait_for_url("**/staffauditeventview/list/**")
    listing = claire.locator("table.table-bordered").inner_text()
    assert "Compte de l'espace locataire désactivé : locataire@example.org" in listing
    assert serious_violations(claire) == []


def test_the_household_s_full_lists_open_filtered(live, claire):
    application = live[0]
    with application.app_context():
        entries = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(
            LedgerEntry.household_id == application.config["journey"]["arrears"]))
    claire.goto(household_url(live, "arrears"))
    claire.get_by_role("link", name="Toutes les écritures du foyer").click()
    claire.wait_for_url("**/staffledgerentryview/list/**")
    assert f"Nombre de lignes: {entries}" in " ".join(claire.locator("body").inner_text().split())
    claire.go_back()
    claire.get_by_role("link", name="Modifier le foyer").click()
    claire.wait_for_url("**/staffhouseholdview/edit/**")
    assert serious_violations(claire) == []
