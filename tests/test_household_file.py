"""Issue 12, point 2: the household page (`/agence/foyers/<id>`) shows everything about one household, and the
actions staff take from there (resend the activation e-mail, disable the account, attach a document, open a request
for the tenant, write a note or a payment promise) work, say what they did, refuse bad input next to the field,
are audited, and are a 404 for a staff member of another agency."""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Agency, AuditEvent, AuthorSide, Direction, Document, DocumentKind, EntryKind, Household, HouseholdNote,
    LedgerEntry, NoteKind, OutgoingMail, RequestStatus, TenantAccount, TenantRequest,
)
from app.services import household_file, ledger
from app.services.audit import AuditTrailError
from tests.conftest import csrf_token
from tests.samples import pdf_bytes, png_bytes

STAFF = "gestionnaire@example.org"
AGENT = "agence@example.org"  # a chargé de clientèle of the Orléans agency only


def page_url(household_id: int) -> str:
    return f"/agence/foyers/{household_id}"


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).replace("&#39;", "'")


def post(client, household_id: int, action: str, data: dict, **kwargs):
    token = csrf_token(client, page_url(household_id))
    return client.post(f"{page_url(household_id)}/{action}", data={"csrf_token": token, **data}, **kwargs)


def field_error(response, field: str) -> str:
    match = re.search(rf'id="{field}-error">([^<]*)<', response.get_data(as_text=True))
    return match.group(1).replace("&#39;", "'") if match else ""


def audit_summaries(app, household_id: int) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEvent.summary).where(AuditEvent.household_id == household_id)
                                       .order_by(AuditEvent.id)))


def move_to_tours(app, household_id: int) -> None:
    with app.app_context():
        db.session.get(Household, household_id).agency_id = db.session.scalar(
            sa.select(Agency.id).where(Agency.code == "AG-TRS"))
        db.session.commit()


# --- the page -----------------------------------------------------------------------------------------------------

def test_the_page_shows_the_whole_household_on_one_screen(app, client_for, demo):
    with app.app_context():
        household = db.session.get(Household, demo["retard"])
        lease = household.leases[0]
        newest = db.session.scalar(sa.select(LedgerEntry).where(LedgerEntry.household_id == household.id)
                                   .order_by(LedgerEntry.entry_date.desc(), LedgerEntry.id.desc()))
        request_numbers = db.session.scalars(sa.select(TenantRequest.number).where(
            TenantRequest.household_id == household.id)).all()
        expected = [household.client_number, household.signatory_name, household.phone, lease.display_number,
                    lease.unit.street, "retard@example.org", newest.label, *request_numbers,
                    "Appel du locataire : il réglera une partie de l'arriéré par virement."]
    page = text(client_for(STAFF).get(page_url(demo["retard"])))
    for value in expected:
        assert value in page, value
    # balance and overdue as the ledger says, in French money; the demo's promise and its state
    assert re.search(r"Solde doit \d[\d ]*,\d\d €", page)
    assert re.search(r"Impayé \(échu\) \d[\d ]*,\d\d €", page)
    assert re.search(r"\d+,00 € au plus tard le \d\d/\d\d/\d{4} : en cours", page)
    for section in ("Contrats et logements", "Occupants", "Espace locataire", "Derniers mouvements", "Documents",
                    "Assurance habitation", "Prélèvement", "Paiements par carte", "Historique"):
        assert section in page, section


def test_search_and_the_households_list_land_on_the_page(app, client_for, demo):
    with app.app_context():
        number = db.session.get(Household, demo["locataire"]).client_number
    staff = client_for(STAFF)
    found = staff.get(f"/agence/recherche/?q={number}")
    assert found.status_code == 302 and found.headers["Location"].endswith(page_url(demo["locataire"]))
    shown = staff.get(f"/staffhouseholdview/show/{demo['locataire']}")
    assert shown.status_code == 302 and shown.headers["Location"].endswith(page_url(demo["locataire"]))


def test_another_agency_s_household_is_a_404_for_its_page_and_every_action(app, client_for, demo):
    move_to_tours(app, demo["retard"])
    agent = client_for(AGENT)
    assert agent.get(page_url(demo["locataire"])).status_code == 200
    token = csrf_token(agent, page_url(demo["locataire"]))
    assert agent.get(page_url(demo["retard"])).status_code == 404
    assert agent.get(f"{page_url(demo['retard'])}/desactivation").status_code == 404
    for action, data in (("note", {"note-kind": "NOTE", "note-body": "intrusion"}),
                         ("demande", {"request-category": "PLUMBING", "request-subject": "x",
                                      "request-description": "x"}),
                         ("activation", {}), ("desactivation", {})):
        response = agent.post(f"{page_url(demo['retard'])}/{action}", data={"csrf_token": token, **data})
        assert response.status_code == 404, action
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(HouseholdNote).where(
            HouseholdNote.body == "intrusion")) == 0
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == demo["retard"]))
        assert account.user.active
    assert audit_summaries(app, demo["retard"]) == []


def test_an_action_without_its_csrf_token_is_refused_and_changes_nothing(app, client_for, demo):
    staff = client_for(STAFF)
    response = staff.post(f"{page_url(demo['retard'])}/desactivation")
    assert response.status_code == 400
    response = staff.post(f"{page_url(demo['retard'])}/note", data={"note-kind": "NOTE", "note-body": "sans jeton"})
    assert response.status_code == 400
    with app.app_context():
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == demo["retard"]))
        assert account.user.active
        assert db.session.scalar(sa.select(HouseholdNote.id).where(HouseholdNote.body == "sans jeton")) is None


# --- notes and payment promises -------------------------------------------------------------------------------------

def test_a_note_is_recorded_with_its_author_shown_and_audited(app, client_for, demo):
    staff = client_for(STAFF)
    response = post(staff, demo["locataire"], "note", {"note-kind": "NOTE",
                                                       "note-body": "Appel : demande un échéancier."})
    assert response.status_code == 302 and response.headers["Location"].endswith("#notes")
    page = text(staff.get(page_url(demo["locataire"])))
    assert "Note enregistrée." in page
    assert re.search(r"Gaston Gestionnaire - Note Appel : demande un échéancier\.", page)
    with app.app_context():
        note = db.session.scalar(sa.select(HouseholdNote).where(HouseholdNote.household_id == demo["locataire"]))
        assert (note.kind, note.author.email, note.promised_amount) == (NoteKind.NOTE, STAFF, None)
    assert audit_summaries(app, demo["locataire"]) == ["Ajout : note « Appel : demande un échéancier. »"]


def test_a_payment_promise_takes_an_amount_and_a_date(app, client_for, demo):
    staff = client_for(STAFF)
    due = date.today() + timedelta(days=10)
    response = post(staff, demo["locataire"], "note", {
        "note-kind": "PAYMENT_PROMISE", "note-body": "Versera 120 € le 10.", "note-amount": "120,50",
        "note-promised_on": due.isoformat()})
    assert response.status_code == 302
    with app.app_context():
        note = db.session.scalar(sa.select(HouseholdNote).where(HouseholdNote.household_id == demo["locataire"]))
        assert (note.kind, note.promised_amount, note.promised_on) == (NoteKind.PAYMENT_PROMISE, Decimal("120.50"),
                                                                       due)
    page = text(staff.get(page_url(demo["locataire"])))
    assert f"120,50 € au plus tard le {due:%d/%m/%Y} : en cours" in page


@pytest.mark.parametrize("data, field, message", [
    ({"note-kind": "NOTE", "note-body": "  "}, "note-body", "Ce champ est obligatoire."),
    ({"note-kind": "PAYMENT_PROMISE", "note-body": "x", "note-promised_on": "2099-01-01"}, "note-amount",
     "Saisissez le montant promis, entre 0,01 € et 99 999,99 €."),
    ({"note-kind": "PAYMENT_PROMISE", "note-body": "x", "note-amount": "0"}, "note-amount",
     "Saisissez le montant promis, entre 0,01 € et 99 999,99 €."),
    ({"note-kind": "PAYMENT_PROMISE", "note-body": "x", "note-amount": "12,345"}, "note-amount",
     "Saisissez un montant en euros avec au plus deux chiffres après la virgule."),
    ({"note-kind": "PAYMENT_PROMISE", "note-body": "x", "note-amount": "abc"}, "note-amount",
     "Saisissez un montant en euros, par exemple 125,50."),
    ({"note-kind": "PAYMENT_PROMISE", "note-body": "x", "note-amount": "50", "note-promised_on": "2020-01-01"},
     "note-promised_on", "Saisissez la date promise : aujourd'hui ou plus tard, dans l'année."),
    ({"note-kind": "NOTE", "note-body": "x", "note-amount": "50"}, "note-kind",
     "Une simple note n'a ni montant ni date : choisissez « Promesse de paiement » ou videz ces champs."),
    ({"note-kind": "NOTE", "note-body": "x" * 2001}, "note-body",
     "Le champ ne peut pas contenir plus de 2000 caractères."),
    ({"note-kind": "SOMETHING", "note-body": "x"}, "note-kind", "N'est pas un choix valide."),
], ids=["empty", "no-amount", "zero", "three-decimals", "letters", "past-date", "note-with-amount", "too-long",
        "bad-kind"])
def test_a_bad_note_is_refused_next_to_its_field_and_nothing_is_written(app, client_for, demo, data, field,
                                                                          message):
    response = post(client_for(STAFF), demo["locataire"], "note", data)
    assert response.status_code == 400
    assert field_error(response, field) == message  # WTForms' own messages too, in French
    assert re.search(r'<details open>\s*<summary>Ajouter une note', response.get_data(as_text=True))  # shown open
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(HouseholdNote).where(
            HouseholdNote.household_id == demo["locataire"])) == 0


def _payment(household_id: int, lease_id: int, day: date, amount: str) -> LedgerEntry:
    return LedgerEntry(household_id=household_id, lease_id=lease_id, kind=EntryKind.TRANSFER,
                       direction=Direction.CREDIT, amount=Decimal(amount), label="Virement", entry_date=day)


def test_a_promise_is_kept_by_payments_between_the_promise_and_its_date_else_broken(app, demo):
    today = date.today()
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        db.session.execute(sa.delete(LedgerEntry).where(  # only the payments below
            LedgerEntry.household_id == household.id, LedgerEntry.kind.in_(ledger.TENANT_PAYMENT_KINDS)))
        made = datetime.now(timezone.utc) - timedelta(days=20)

        def promise(amount, due):
            note = HouseholdNote(household_id=household.id, kind=NoteKind.PAYMENT_PROMISE, body="p",
                                 promised_amount=Decimal(amount), promised_on=due, created_at=made)
            db.session.add(note)
            return note

        kept, broken, pending = promise("100.00", today - timedelta(days=5)), \
            promise("500.00", today - timedelta(days=1)), promise("500.00", today + timedelta(days=3))
        db.session.add_all([
            _payment(household.id, demo["locataire_lease"], made.date() - timedelta(days=2), "1000.00"),  # before
            _payment(household.id, demo["locataire_lease"], today - timedelta(days=10), "60.00"),
            _payment(household.id, demo["locataire_lease"], today - timedelta(days=6), "40.00"),
        ])
        db.session.commit()
        states = household_file.promises(household.id, [kept, broken, pending], today)
        assert (states[kept.id].state, states[kept.id].paid) == (household_file.KEPT, Decimal("100.00"))
        assert (states[broken.id].state, states[broken.id].paid) == (household_file.BROKEN, Decimal("100.00"))
        assert states[pending.id].state == household_file.PENDING


def test_a_note_is_never_changed_or_deleted(app, demo):
    with app.app_context():
        note = HouseholdNote(household_id=demo["locataire"], kind=NoteKind.NOTE, body="écrite")
        db.session.add(note)
        db.session.commit()
        note.body = "réécrite"
        with pytest.raises(AuditTrailError):
            db.session.commit()
        db.session.rollback()
        with pytest.raises(AuditTrailError):
            db.session.execute(sa.delete(HouseholdNote))
        db.session.rollback()
        assert db.session.get(HouseholdNote, note.id).body == "écrite"


# --- documents ------------------------------------------------------------------------------------------------------

def test_an_attached_pdf_reaches_the_tenant_s_documents_and_mailbox(app, client_for, demo):
    staff = client_for(STAFF)
    response = post(staff, demo["locataire"], "document", {
        "document-title": "Courrier du 25 novembre", "document-lease": "", "document-confirm": "y",
        "document-file": (io.BytesIO(pdf_bytes()), "courrier.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 302 and response.headers["Location"].endswith("#documents")
    with app.app_context():
        document = db.session.scalar(sa.select(Document).where(Document.title == "Courrier du 25 novembre"))
        assert (document.household_id, document.kind, document.created_by.email) == (
            demo["locataire"], DocumentKind.OTHER, STAFF)
        mail = db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.recipient == "locataire@example.org")
                                 .order_by(OutgoingMail.id.desc()))
        assert "Courrier du 25 novembre" in mail.text_body and "/documents/" in mail.text_body
        document_id = document.id
    tenant = client_for("locataire@example.org")
    assert "Courrier du 25 novembre" in text(tenant.get("/documents/"))
    download = tenant.get(f"/documents/{document_id}")
    assert download.status_code == 200 and download.data == pdf_bytes()
    staff_copy = staff.get(f"{page_url(demo['locataire'])}/document/{document_id}")
    assert staff_copy.status_code == 200 and staff_copy.data == pdf_bytes()
    # through another household's page, the same document is a 404
    assert staff.get(f"{page_url(demo['retard'])}/document/{document_id}").status_code == 404
    assert audit_summaries(app, demo["locataire"]) == ["Ajout : document « Courrier du 25 novembre »"]


@pytest.mark.parametrize("data, field, message", [
    ({"document-title": "Plan", "document-file": (pdf_bytes, "plan.pdf")}, "document-confirm",
     "Cochez la case pour confirmer."),
    ({"document-title": "Photo", "document-confirm": "y", "document-file": (png_bytes, "x.pdf")},
     "document-file", "Seuls les fichiers PDF sont acceptés."),
    ({"document-title": "Vide", "document-confirm": "y"}, "document-file", "Choisissez un fichier."),
    ({"document-title": " ", "document-confirm": "y", "document-file": (pdf_bytes, "a.pdf")},
     "document-title", "Ce champ est obligatoire."),
    ({"document-title": "Autre contrat", "document-confirm": "y", "document-lease": "999999",
      "document-file": (pdf_bytes, "a.pdf")}, "document-lease", "N'est pas un choix valide."),
], ids=["not-confirmed", "not-a-pdf", "no-file", "no-title", "foreign-lease"])
def test_a_bad_document_is_refused_next_to_its_field(app, client_for, demo, data, field, message):
    data = {key: (io.BytesIO(value[0]()), value[1]) if isinstance(value, tuple) else value
            for key, value in data.items()}  # a fresh file for each run (SQLite, then PostgreSQL)
    response = post(client_for(STAFF), demo["locataire"], "document", data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert field_error(response, field) == message
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Document).where(
            Document.kind == DocumentKind.OTHER, Document.household_id == demo["locataire"])) == 0


# --- a request opened for the tenant ------------------------------------------------------------------------------

def test_a_request_opened_for_the_tenant_is_theirs_and_says_who_wrote_it(app, client_for, demo):
    staff = client_for(STAFF)
    response = post(staff, demo["locataire"], "demande", {
        "request-category": "HEATING", "request-subject": "Radiateur froid",
        "request-description": "Appel du locataire : le radiateur du salon reste froid."})
    assert response.status_code == 302 and "/agence/demandes/" in response.headers["Location"]
    with app.app_context():
        request = db.session.scalar(sa.select(TenantRequest).where(TenantRequest.subject == "Radiateur froid"))
        assert (request.household_id, request.status) == (demo["locataire"], RequestStatus.SUBMITTED)
        assert (request.events[0].author_side, request.events[0].author.email) == (AuthorSide.STAFF, STAFF)
        mail = db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.recipient == "locataire@example.org")
                                 .order_by(OutgoingMail.id.desc()))
        assert request.number in mail.subject and "Votre agence a enregistré cette demande pour vous." in \
            mail.text_body
        number = request.number
    assert number in text(client_for("locataire@example.org").get("/demandes/"))
    assert audit_summaries(app, demo["locataire"]) == [f"Ajout : demande « {number} - Radiateur froid »"]


def test_a_request_without_a_type_is_refused_next_to_the_field(app, client_for, demo):
    response = post(client_for(STAFF), demo["locataire"], "demande", {
        "request-category": "", "request-subject": "x", "request-description": "y"})
    assert response.status_code == 400
    assert field_error(response, "request-category") == "Choisissez le type de la demande."


# --- the portal account ---------------------------------------------------------------------------------------------

def test_resending_the_activation_e_mail_of_a_pending_account(app, client_for, demo):
    with app.app_context():
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == demo["retard"]))
        account.activated_at = None
        db.session.commit()
    staff = client_for(STAFF)
    assert "Renvoyer l'e-mail d'activation" in text(staff.get(page_url(demo["retard"])))
    response = post(staff, demo["retard"], "activation", {})
    assert response.status_code == 302
    assert "E-mail d'activation renvoyé à retard@example.org." in text(staff.get(page_url(demo["retard"])))
    with app.app_context():
        sent = db.session.scalars(sa.select(OutgoingMail.subject).where(
            OutgoingMail.recipient == "retard@example.org")).all()
        assert len(sent) == 1 and "ctiv" in sent[0]
    assert audit_summaries(app, demo["retard"]) == ["E-mail d'activation renvoyé à retard@example.org"]


def test_resending_to_an_active_account_sends_nothing_and_says_so(app, client_for, demo):
    staff = client_for(STAFF)
    assert "Renvoyer l'e-mail d'activation" not in text(staff.get(page_url(demo["retard"])))
    post(staff, demo["retard"], "activation", {})
    assert "Ce compte n'attend pas d'activation : rien n'a été envoyé." in text(staff.get(page_url(demo["retard"])))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutgoingMail).where(
            OutgoingMail.recipient == "retard@example.org")) == 0


def test_disabling_the_account_asks_first_then_ends_the_tenant_s_sessions(app, client_for, demo):
    tenant = client_for("retard@example.org")
    assert tenant.get("/").status_code == 200
    staff = client_for(STAFF)
    confirm = staff.get(f"{page_url(demo['retard'])}/desactivation")
    assert confirm.status_code == 200
    assert "Désactiver le compte de Monsieur Karim Benali ?" in text(confirm)
    with app.app_context():  # asking changed nothing
        assert db.session.scalar(sa.select(TenantAccount).where(
            TenantAccount.household_id == demo["retard"])).user.active
    token = csrf_token(staff, f"{page_url(demo['retard'])}/desactivation")
    response = staff.post(f"{page_url(demo['retard'])}/desactivation", data={"csrf_token": token})
    assert response.status_code == 302
    page = text(staff.get(page_url(demo["retard"])))
    assert "Compte désactivé : le locataire ne peut plus se connecter" in page and "Désactivé" in page
    assert tenant.get("/").status_code == 302  # signed out
    assert "Compte de l'espace locataire désactivé : retard@example.org" in audit_summaries(app, demo["retard"])
    # a colleague who confirms a second time is told, nothing else happens
    again = staff.post(f"{page_url(demo['retard'])}/desactivation", data={"csrf_token": token})
    assert again.status_code == 302
    assert "Ce compte est déjà désactivé." in text(staff.get(page_url(demo["retard"])))
    assert len(audit_summaries(app, demo["retard"])) == 1
