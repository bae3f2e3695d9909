"""The tenant's space: pages, documents as PDF, receipts, the rent certificate, and the household wall between
tenants (another household's object is a 404 with no hint)."""

from __future__ import annotations

import html
import io
import re
from datetime import date

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app import filestore
from app.extensions import db
from app.formatting import money
from app.models import (
    Document, DocumentKind, Household, InsuranceCertificate, Lease, Occupant, OccupantRelation, RequestCategory,
    TenantRequest,
)
from app.services import documents, ledger
from tests.conftest import csrf_token


def text(response) -> str:
    """The page with entities decoded and whitespace folded (amounts carry no-break spaces)."""
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def pdf_text(data: bytes) -> str:
    """The PDF's text with whitespace folded (wkhtmltopdf places words one by one)."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


def months(app, household_id):
    """{(lease_id, period): MonthStatus} of a household."""
    with app.app_context():
        household = db.session.get(Household, household_id)
        return ledger.month_statuses(ledger.lease_entries([lease.id for lease in household.leases]))


def fr_money(app, amount) -> str:
    """An amount as the French pages print it, spaces folded like `pdf_text` does."""
    with app.test_request_context():
        return " ".join(money(amount).split())


# --- pages ------------------------------------------------------------------------------------------------------

def test_home_of_a_tenant_up_to_date(client_for, app, demo):
    page = text(client_for("locataire@example.org").get("/"))
    assert "Bonjour Léa Martin" in page and "Nous sommes le" in page
    assert re.search(r"Votre compte est (débiteur|créditeur) de [\d ]+,\d\d €", page)
    assert "en retard de paiement" not in page
    assert "Historique de mes demandes (2)" in page
    for link in ("/mon-compte/", "/contrat/", "/documents/", "/paiement/", "/demandes/"):
        assert f'href="{link}"' in page


def test_home_of_a_tenant_in_arrears_shows_the_overdue_alert(client_for, app, demo):
    with app.app_context():
        overdue = ledger.household_overdue(demo["retard"], date.today())
        agency = db.session.get(Household, demo["retard"]).agency
        phone, address = agency.phone, agency.address
    page = text(client_for("retard@example.org").get("/"))
    assert f"Un montant de {fr_money(app, overdue)} est en retard de paiement." in page
    assert phone in page and address in page
    assert "Payer en ligne" in page


def test_home_warns_when_insurance_is_missing(client_for, app, demo):
    with app.app_context():
        db.session.execute(sa.delete(InsuranceCertificate).where(
            InsuranceCertificate.household_id == demo["locataire"]))
        db.session.commit()
    page = text(client_for("locataire@example.org").get("/"))
    assert "Nous n'avons pas votre attestation d'assurance habitation." in page


def test_contract_page_lists_every_lease_and_the_occupants(client_for, app, demo):
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        leases = [(lease.display_number, lease.unit.address, lease.rent, lease.charges, lease.deposit)
                  for lease in household.leases]
        occupants = [o.first_name for o in household.occupants]
    page = text(client_for("locataire@example.org").get("/contrat/"))
    assert len(leases) == 2
    for number, address, rent, charges, deposit in leases:
        assert number in page and address in page
        for amount in (rent, charges, deposit):
            assert fr_money(app, amount) in page
    for first_name in occupants:
        assert first_name in page
    assert "Adresse de facturation" in page and "Assurance habitation" in page


def test_payment_page_shows_the_balance_and_history(client_for, app, demo):
    with app.app_context():
        balance = ledger.household_balance(demo["retard"])
    page = text(client_for("retard@example.org").get("/paiement/"))
    assert "Solde de votre compte au" in page
    assert f"Votre compte est débiteur de {fr_money(app, balance)}" in page
    assert "APL versée par la CAF" in page  # housing benefit shown apart from the tenant's payments


# --- documents ----------------------------------------------------------------------------------------------------

def test_documents_page_lists_receipts_due_notices_and_statements(client_for, app, demo):
    page = text(client_for("retard@example.org").get("/documents/"))
    assert "Quittance " in page and "(paiement partiel)" in page  # retard has paid months and a partly paid one
    assert "Avis d'échéance" in page and "Régularisation des charges" in page


def test_quittance_of_a_paid_month_shows_rent_charges_and_payments(client_for, app, demo):
    statuses = months(app, demo["retard"])
    (lease_id, period), status = max(((key, s) for key, s in statuses.items()
                                      if s.settled and s.paid_by_tenant > 0), key=lambda item: item[0][1])
    response = client_for("retard@example.org").get(f"/documents/recu/{lease_id}/{period}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Cache-Control"] == "no-store"
    content = pdf_text(response.data)
    assert "Quittance de loyer" in content and "ne vaut pas quittance" not in content
    with app.test_request_context():
        label = documents.period_label(period)
    assert label in content
    for amount in (status.rent, status.charges, status.housing_benefit, status.payments[-1].amount):
        assert fr_money(app, amount) in content
    # stored once: the second download serves the same file
    again = client_for("retard@example.org").get(f"/documents/recu/{lease_id}/{period}")
    assert again.data == response.data


def test_a_partly_paid_month_gets_a_recu_never_a_quittance(client_for, app, demo):
    statuses = months(app, demo["retard"])
    partial = [(key, s) for key, s in statuses.items() if s.receipt_kind == "recu"]
    unpaid = [key for key, s in statuses.items() if s.receipt_kind is None]
    assert partial and unpaid
    (lease_id, period), status = partial[0]
    client = client_for("retard@example.org")
    content = pdf_text(client.get(f"/documents/recu/{lease_id}/{period}").data)
    assert "ne vaut pas quittance" in content and "Quittance de loyer" not in content
    assert fr_money(app, status.outstanding) in content
    lease_id, period = unpaid[0]
    response = client.get(f"/documents/recu/{lease_id}/{period}")
    assert response.status_code == 404 and "ni quittance ni reçu" in text(response)
    with app.app_context():
        assert db.session.scalar(sa.select(Document).where(Document.kind == DocumentKind.RECEIPT,
                                                           Document.period == period)) is None


def test_due_notice_and_charge_statement_contents(client_for, app, demo):
    client = client_for("locataire@example.org")
    with app.app_context():
        notice = db.session.scalar(sa.select(Document).where(
            Document.household_id == demo["locataire"], Document.kind == DocumentKind.DUE_NOTICE)
            .order_by(Document.period.desc()))
        statement = db.session.scalar(sa.select(Document).where(
            Document.household_id == demo["locataire"], Document.kind == DocumentKind.CHARGE_STATEMENT))
        client_number = db.session.get(Household, demo["locataire"]).client_number
        notice_id, lease_number = notice.id, notice.lease.display_number
        statement_id = statement.id if statement else None
    content = pdf_text(client.get(f"/documents/{notice_id}").data)
    assert "Avis d'échéance" in content and client_number in content and lease_number in content
    assert "Loyer principal" in content and "Provisions sur charges" in content
    if "Prélèvement automatique" in content:
        assert "pré-notification" in content
    if statement_id:
        content = pdf_text(client.get(f"/documents/{statement_id}").data)
        assert "par nature de charges" in content and "Provisions versées" in content
        assert "six mois" in content


def test_a_file_missing_on_disk_is_rendered_again(client_for, app, demo):
    client = client_for("locataire@example.org")
    with app.app_context():
        document_id = db.session.scalar(sa.select(Document.id).where(
            Document.household_id == demo["locataire"], Document.kind == DocumentKind.DUE_NOTICE))
    first = client.get(f"/documents/{document_id}")
    with app.app_context():
        document = db.session.get(Document, document_id)
        filestore.delete(documents.stored_key(document))
    second = client.get(f"/documents/{document_id}")
    assert second.status_code == 200 and pdf_text(second.data) == pdf_text(first.data)


def test_a_lost_uploaded_file_gives_a_clear_message(client_for, app, demo):
    with app.app_context():
        document = Document(household_id=demo["locataire"], kind=DocumentKind.OTHER, title="Courrier de l'agence",
                            stored_name="disparu.pdf", original_filename="courrier.pdf")
        db.session.add(document)
        db.session.commit()
        document_id = document.id
    response = client_for("locataire@example.org").get(f"/documents/{document_id}")
    assert response.status_code == 404 and "Ce document n'est plus disponible" in text(response)


def test_cli_regenerates_a_households_documents(app, demo, client_for):
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        number = household.client_number
        document_id = db.session.scalar(sa.select(Document.id).where(
            Document.household_id == household.id, Document.kind == DocumentKind.DUE_NOTICE))
    client_for("locataire@example.org").get(f"/documents/{document_id}")
    with app.app_context():
        old_name = db.session.get(Document, document_id).stored_name
    result = app.test_cli_runner().invoke(args=["regenerate-documents", number])
    assert result.exit_code == 0 and "1 documents rendered again" in result.output
    with app.app_context():
        assert db.session.get(Document, document_id).stored_name != old_name
    bad = app.test_cli_runner().invoke(args=["regenerate-documents", "00000000"])
    assert bad.exit_code != 0 and "no household" in bad.output


# --- rent certificate ---------------------------------------------------------------------------------------------

def _certificate(client):
    return client.post("/documents/attestation", data={"csrf_token": csrf_token(client, "/documents/")})


def test_rent_certificate_for_a_tenant_up_to_date_and_its_public_check(client_for, app, demo):
    response = _certificate(client_for("locataire@example.org"))
    assert response.status_code == 200 and response.headers["Content-Disposition"].startswith("attachment")
    content = pdf_text(response.data)
    assert "à jour du paiement de ses loyers et charges" in content
    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", content).group(0)
    assert "/verifier/" in content
    anonymous = app.test_client()
    page = text(anonymous.get(f"/verifier/?code={code.lower().replace('-', ' ')}"))
    assert "Attestation authentique." in page and "Léa Martin" in page
    assert "locataire@example.org" not in page and "L/" not in page  # only name, date and status
    page = text(anonymous.get("/verifier/?code=AAAA-BBBB-CCCC"))
    assert "Aucune attestation ne correspond à ce code." in page


def test_no_rent_certificate_while_in_arrears(client_for, app, demo):
    response = _certificate(client_for("retard@example.org"))
    assert response.status_code == 409
    assert "retard de paiement" in text(response) and "%PDF" not in response.get_data(as_text=True)


def test_certificate_needs_csrf(client_for):
    assert client_for("locataire@example.org").post("/documents/attestation").status_code == 400


# --- occupants ----------------------------------------------------------------------------------------------------

def test_declaring_an_occupant_creates_an_administrative_request(client_for, app, demo):
    client = client_for("locataire@example.org")
    response = client.post("/contrat/occupant/arrivee", data={
        "csrf_token": csrf_token(client, "/contrat/occupant/arrivee"), "first_name": "Noé", "last_name": "Martin",
        "birth_date": "2026-09-01", "relation": "CHILD", "arrival_date": "2026-09-03"})
    assert response.status_code == 302
    with app.app_context():
        request = db.session.scalar(sa.select(TenantRequest).where(
            TenantRequest.category == RequestCategory.OCCUPANT_ARRIVAL))
        assert request.household_id == demo["locataire"] and request.kind.name == "ADMINISTRATIVE"
        assert request.payload["first_name"] == "Noé" and request.payload["relation"] == "CHILD"
        assert request.agency_id == request.household.agency_id
    bad = client.post("/contrat/occupant/arrivee", data={
        "csrf_token": csrf_token(client, "/contrat/occupant/arrivee"), "first_name": "", "last_name": "Martin",
        "relation": "CHILD", "arrival_date": "pas une date"})
    assert bad.status_code == 400
    assert "Ce champ est obligatoire." in text(bad) and "Saisissez une date valide." in text(bad)


# --- the household wall -------------------------------------------------------------------------------------------

def test_another_households_objects_are_404(client_for, app, demo):
    with app.app_context():
        theirs = db.session.get(Household, demo["locataire"])
        document_id = db.session.scalar(sa.select(Document.id).where(Document.household_id == theirs.id))
        lease_id = theirs.leases[0].id
        occupant_id = db.session.scalar(sa.select(Occupant.id).where(
            Occupant.household_id == theirs.id, Occupant.relation != OccupantRelation.SIGNATORY))
    statuses = months(app, demo["locataire"])
    period = max(p for (lid, p), s in statuses.items() if lid == lease_id and s.settled)
    intruder = client_for("retard@example.org")
    missing = intruder.get("/documents/999999999")
    for url in (f"/documents/{document_id}", f"/documents/recu/{lease_id}/{period}"):
        response = intruder.get(url)
        assert response.status_code == 404, url
        assert response.get_data() == missing.get_data() or "%PDF" not in response.get_data(as_text=True)
    if occupant_id:
        response = intruder.post("/contrat/occupant/depart", data={
            "csrf_token": csrf_token(intruder, "/contrat/occupant/depart"), "occupant": str(occupant_id),
            "departure_date": "2026-12-01"})
        assert response.status_code in (400, 404)
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count(TenantRequest.id)).where(
                TenantRequest.category == RequestCategory.OCCUPANT_DEPARTURE)) == 0


@pytest.mark.parametrize("url", ["/documents/recu/1/2026-13", "/documents/recu/1/..%2F..%2Fetc", "/documents/abc"])
def test_malformed_document_urls_are_404(client_for, url):
    assert client_for("locataire@example.org").get(url).status_code == 404


# --- the PDF engine is kept on a leash ------------------------------------------------------------------------------

@pytest.mark.parametrize("resource", ['<iframe src="file://{secret}"></iframe>', '<img src="file://{secret}">',
                                      '<link rel="stylesheet" href="file://{secret}">'])
def test_pdf_engine_reads_no_local_file(app, tmp_path, resource):
    from app.pdf import html_to_pdf

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    page = f"<html><body><p>visible</p>{resource.format(secret=secret)}</body></html>"
    with app.app_context():
        assert "visible" in pdf_text(html_to_pdf("<html><body><p>visible</p></body></html>"))
        with pytest.raises(OSError, match="network error"):
            html_to_pdf(page)


def test_user_values_are_escaped_in_pdfs(app, client_for, demo):
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        household.billing_complement = "<b>gras</b><script>x</script>"
        db.session.commit()
        lease = db.session.scalar(sa.select(Lease).where(Lease.household_id == household.id))
        status = next(s for (lid, p), s in ledger.month_statuses(ledger.lease_entries([lease.id])).items()
                      if s.settled)
        content = pdf_text(documents.receipt_pdf(lease, status))
    assert "<b>gras</b>" in content  # printed as text, not interpreted


def test_pdf_engine_makes_no_network_request(app):
    import socket

    from app.pdf import html_to_pdf

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        page = f'<html><body><p>visible</p><img src="http://127.0.0.1:{port}/track.png"></body></html>'
        with app.app_context():
            content = pdf_text(html_to_pdf(page))
        assert "visible" in content
        with pytest.raises(socket.timeout):
            listener.accept()  # nobody came: the engine did not fetch the image
