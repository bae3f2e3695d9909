"""SEPA direct debit: bank details, subscription with a review step, the mandate PDF, staff activation, the
collection file validated against the official XSD, rejects, lapse, and the household wall."""

from __future__ import annotations

import html
import io
import os
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sepaxml
import sqlalchemy as sa
import xmlschema
from pypdf import PdfReader

from app import create_app
from app.extensions import db
from app.models import (
    Direction, DirectDebitBatch, DirectDebitCollection, DirectDebitMandate, Document, DocumentKind, EntryKind, Household,
    LedgerEntry, MandateStatus, OutgoingMail, utcnow,
)
from app.services import ledger, sepa
from config import ConfigError, TestingConfig
from tests.conftest import PASSWORD, csrf_token
from tests.samples import pdf_bytes

GOOD_IBAN = "FR76 3000 4008 1900 0123 4567 879"


def text(response) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


@pytest.mark.parametrize("value", [GOOD_IBAN, "fr7630004008190001234567879", " FR76 3000 4008 1900 0123 4567 879 "])
def test_valid_french_iban_with_spaces_and_lower_case(value):
    iban, bic, _ = sepa.check_bank_details(value, "")
    assert iban == "FR7630004008190001234567879" and bic.startswith("BNPAFRPP")


@pytest.mark.parametrize("value, fragment", [
    ("FR7630004008190001234567878", "n'est pas valide"),   # wrong IBAN check digits
    ("FR5430006000011234567890100", "clé RIB"),             # right IBAN check digits, wrong RIB key
    ("TR330006100519786457841326", "zone SEPA"),            # a valid IBAN outside SEPA
    ("US12345", "pays"),
    ("", "n'est pas valide"),
])
def test_bad_ibans_are_explained(app, value, fragment):
    with app.test_request_context(), pytest.raises(sepa.SepaError) as error:
        sepa.check_bank_details(value, "")
    assert fragment in error.value.message and error.value.field == "iban"


def test_bic_must_match_the_bank(app):
    with app.test_request_context(), pytest.raises(sepa.SepaError) as error:
        sepa.check_bank_details(GOOD_IBAN, "SOGEFRPP")
    assert error.value.field == "bic"


def test_creditor_identifier_is_checked_at_start(tmp_path):
    assert sepa.creditor_id_problem("FR72ZZZ123456") is None
    assert sepa.creditor_id_problem("FR73ZZZ123456")
    assert sepa.creditor_id_problem("DE98ZZZ09999999999")
    with pytest.raises(ConfigError, match="SEPA_CREDITOR_ID"):
        create_app(TestingConfig(), INSTANCE_DIR=tmp_path, SEPA_CREDITOR_ID="FR00ZZZ000000")


# --- subscription -------------------------------------------------------------------------------------------------

def subscribe_step1(client, **overrides):
    data = {"csrf_token": csrf_token(client, "/paiement/prelevement"), "iban": GOOD_IBAN, "bic": "",
            "account_holder": "KARIM BENALI", "street": "62 boulevard Jean Moulin", "postcode": "45000",
            "city": "Orléans", "debit_day": "7", "consent": "y", "rib": (io.BytesIO(pdf_bytes()), "rib.pdf")}
    data.update(overrides)
    return client.post("/paiement/prelevement", data=data, content_type="multipart/form-data")


def subscribe(client):
    review = subscribe_step1(client)
    assert review.status_code == 200, text(review)[-500:]
    return client.post("/paiement/prelevement/valider", data={"csrf_token": csrf_token(client, "/paiement/")})


def mandates(app, household_id):
    with app.app_context():
        return db.session.scalars(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == household_id).order_by(DirectDebitMandate.id)).all()


def test_subscription_review_then_mandate_pdf_and_mail(app, client_for, demo):
    client = client_for("retard@example.org")
    review = subscribe_step1(client)
    page = review.get_data(as_text=True)
    assert "FR76 **** **** 879" in page and "FR7630004008190001234567879" not in page
    assert mandates(app, demo["retard"]) == []  # nothing written before the tenant confirms
    response = client.post("/paiement/prelevement/valider", data={"csrf_token": csrf_token(client, "/paiement/")})
    assert response.status_code == 302
    [mandate] = mandates(app, demo["retard"])
    assert mandate.status is MandateStatus.PENDING_SIGNATURE and mandate.debit_day == 7
    assert mandate.iban == "FR7630004008190001234567879" and len(mandate.reference) <= 35
    assert "FR76" not in mandate.reference and " " not in mandate.reference
    assert "En attente du mandat signé" in text(client.get("/paiement/"))
    with app.app_context():
        document = db.session.scalar(sa.select(Document).where(Document.mandate_id == mandate.id))
        subject = db.session.scalar(sa.select(OutgoingMail.subject).where(
            OutgoingMail.recipient == "retard@example.org"))
    assert document.kind is DocumentKind.SEPA_MANDATE and subject == "Votre mandat de prélèvement à signer"
    pdf = client.get(f"/documents/{document.id}")
    content = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages).split())
    for mention in ("Mandat de prélèvement SEPA", mandate.reference, "FR72ZZZ123456", "Récurrent",
                    "Vous bénéficiez du droit d'être remboursé par votre banque",
                    "dans les 8 semaines suivant la date de débit",
                    "Vos droits concernant le présent mandat sont expliqués", "Signature", "KARIM BENALI"):
        assert mention in content, mention


@pytest.mark.parametrize("overrides, field, message", [
    ({"debit_day": "15"}, "debit_day", "Choisissez le 2, le 7 ou le 10 du mois."),
    ({"iban": "FR5430006000011234567890100"}, "iban", "clé RIB"),
    ({"consent": ""}, "consent", "Vous devez accepter le prélèvement"),
    ({"rib": "html"}, "rib", "Seules les photos"),
])
def test_subscription_errors_are_shown_next_to_the_field(app, client_for, demo, overrides, field, message):
    if overrides.get("rib") == "html":  # a fresh file for each run: an upload stream is read once
        overrides = {"rib": (io.BytesIO(b"<html>RIB</html>"), "rib.pdf")}
    response = subscribe_step1(client_for("retard@example.org"), **overrides)
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.get_data(as_text=True) and message in text(response)
    assert mandates(app, demo["retard"]) == []


def test_a_second_subscription_while_one_is_pending_is_refused(app, client_for, demo):
    client = client_for("retard@example.org")
    subscribe(client)
    again = subscribe_step1(client)
    assert again.status_code == 400 and "Un mandat attend déjà votre signature" in text(again)
    assert len(mandates(app, demo["retard"])) == 1


def test_bank_details_change_needs_csrf(app, client_for, demo):
    client = client_for("retard@example.org")
    response = client.post("/paiement/prelevement", data={"iban": GOOD_IBAN, "debit_day": "7", "consent": "y"})
    assert response.status_code == 400 and mandates(app, demo["retard"]) == []


def test_tenant_cannot_activate_its_mandate_nor_read_another_households(app, client_for, demo):
    client = client_for("retard@example.org")
    subscribe(client)
    [mine] = mandates(app, demo["retard"])
    [theirs] = mandates(app, demo["locataire"])
    for url in (f"/agence/mandats/{mine.id}", f"/agence/mandats/{mine.id}/rib", f"/agence/mandats/{theirs.id}"):
        assert client.get(url).status_code in (403, 404), url
    forged = client.post(f"/agence/mandats/{mine.id}", data={
        "csrf_token": csrf_token(client, "/paiement/"), "decision": "activate", "signed_on": "2026-11-20"})
    assert forged.status_code in (302, 403, 404)
    assert mandates(app, demo["retard"])[0].status is MandateStatus.PENDING_SIGNATURE
    with app.app_context():
        their_document = db.session.scalar(sa.select(Document.id).where(
            Document.household_id == demo["locataire"]))
    assert client.get(f"/documents/{their_document}").status_code == 404


# --- staff activation, collection, rejects ----------------------------------------------------------------------

def activate_as_staff(app, client_for, mandate_id, signed_on=None):
    staff = client_for("gestionnaire@example.org")
    url = f"/agence/mandats/{mandate_id}"
    return staff.post(url, data={"csrf_token": csrf_token(staff, url), "decision": "activate",
                                 "signed_on": (signed_on or date.today()).isoformat()})


def validate_against_xsd(xml: bytes, schema: str) -> None:
    path = os.path.join(os.path.dirname(sepaxml.__file__), "schemas", f"{schema}.xsd")
    xmlschema.XMLSchema(path).validate(xml.decode())


@pytest.mark.parametrize("schema", ["pain.008.001.08", "pain.008.001.02"])
def test_activate_then_collect_a_file_valid_against_the_xsd(app, client_for, demo, schema, mailbox):
    client = client_for("retard@example.org")
    subscribe(client)
    [mandate] = mandates(app, demo["retard"])
    refused_date = activate_as_staff(app, client_for, mandate.id, signed_on=date.today() + timedelta(days=3))
    assert refused_date.status_code == 400
    assert activate_as_staff(app, client_for, mandate.id).status_code == 302
    assert mandates(app, demo["retard"])[0].status is MandateStatus.ACTIVE
    app.config["SEPA_SCHEMA"] = schema
    try:
        with app.app_context():
            owed = ledger.lease_balance(mandate.lease_id)
            month = date.today().replace(day=1) + timedelta(days=32)
            batch = sepa.collect(7, month.replace(day=1), utcnow())
            assert batch is not None and batch.schema == schema
            collections = db.session.scalars(sa.select(DirectDebitCollection).where(
                DirectDebitCollection.batch_id == batch.id)).all()
            mine = next(c for c in collections if c.mandate_id == mandate.id)
            assert mine.amount == owed and mine.sequence_type == "FRST"
            assert ledger.lease_balance(mandate.lease_id) == Decimal("0.00")
            xml = (sepa.batch_folder() / batch.stored_name).read_bytes()
            validate_against_xsd(xml, schema)
            assert mandate.reference.encode() in xml and b"FR7630004008190001234567879" in xml
            assert sepa.collect(7, month.replace(day=1), utcnow()) is None  # run twice: nothing more
            assert db.session.scalar(sa.select(sa.func.count(DirectDebitBatch.id))) == 1
            batch_id = batch.id
    finally:
        app.config["SEPA_SCHEMA"] = "pain.008.001.08"
    staff = client_for("gestionnaire@example.org")
    download = staff.get(f"/agence/mandats/lot/{batch_id}/fichier")
    assert download.status_code == 200 and download.data.startswith(b"<?xml")
    assert client.get(f"/agence/mandats/lot/{batch_id}/fichier").status_code in (403, 404)


def test_recurring_sequence_and_reject(app, client_for, demo, mailbox):
    with app.app_context():
        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["locataire"]))
        db.session.add(LedgerEntry(household_id=mandate.household_id, lease_id=mandate.lease_id,
                                   kind=EntryKind.REGULARISATION, direction=Direction.DEBIT,
                                   amount=Decimal("42.00"), label="Test", entry_date=date.today()))
        db.session.commit()
        month = (date.today().replace(day=1) + timedelta(days=32)).replace(day=1)
        batch = sepa.collect(mandate.debit_day, month, utcnow())
        collection = db.session.scalar(sa.select(DirectDebitCollection).where(
            DirectDebitCollection.mandate_id == mandate.id))
        assert collection.sequence_type == "RCUR"  # the demo mandate was already used
        collection_id, amount, lease_id = collection.id, collection.amount, mandate.lease_id
        assert batch is not None
    staff = client_for("gestionnaire@example.org")
    url = f"/agence/mandats/prelevement/{collection_id}/rejet"
    assert staff.post(url, data={"csrf_token": csrf_token(staff, url), "reason": "AM04",
                                 "rejected_on": date.today().isoformat()}).status_code == 302
    with app.app_context():
        assert ledger.lease_balance(lease_id) == amount
        assert db.session.get(Household, demo["locataire"]).payment_incident is True
        rejects = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == EntryKind.REJECT)).all()
        assert len(rejects) == 1 and rejects[0].amount == amount
    again = staff.post(url, data={"csrf_token": csrf_token(staff, url), "reason": "AM04",
                                  "rejected_on": date.today().isoformat()})
    assert again.status_code == 400 and "déjà enregistré" in text(again)
    mailbox.deliver()
    assert "n'a pas pu être effectué" in mailbox.last_to("locataire@example.org")["Subject"]


def test_updating_the_rib_needs_the_password_and_replaces_the_old_mandate(app, client_for, demo, mailbox):
    client = client_for("locataire@example.org")
    [old] = mandates(app, demo["locataire"])
    wrong = subscribe_step1(client, password="faux", iban="GB33BUKB20201555555555")
    assert wrong.status_code == 400 and "Le mot de passe est incorrect." in text(wrong)
    assert subscribe_step1(client, password=PASSWORD, iban="GB33BUKB20201555555555").status_code == 200
    client.post("/paiement/prelevement/valider", data={"csrf_token": csrf_token(client, "/paiement/")})
    new = mandates(app, demo["locataire"])[-1]
    assert new.replaces_id == old.id and new.status is MandateStatus.PENDING_SIGNATURE
    assert mandates(app, demo["locataire"])[0].status is MandateStatus.ACTIVE  # until the new one is activated
    mailbox.deliver()
    assert any("vont changer" in m["Subject"] for m in mailbox.to("locataire@example.org"))
    activate_as_staff(app, client_for, new.id)
    statuses = [m.status for m in mandates(app, demo["locataire"])]
    assert statuses == [MandateStatus.REPLACED, MandateStatus.ACTIVE]


def test_stopping_direct_debit_is_a_request_to_the_agency(app, client_for, demo):
    client = client_for("locataire@example.org")
    response = client.post("/paiement/prelevement/arreter", data={"csrf_token": csrf_token(client, "/paiement/")})
    assert response.status_code == 302
    assert "Arrêt du prélèvement automatique" in text(client.get(response.location))
    assert mandates(app, demo["locataire"])[0].status is MandateStatus.ACTIVE


def test_mandates_unused_for_36_months_lapse(app, demo):
    with app.app_context():
        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["locataire"]))
        mandate.last_collection_on = date.today() - timedelta(days=365 * 3 + 2)
        db.session.commit()
        assert sepa.lapse_unused(utcnow()) >= 1
        assert db.session.get(DirectDebitMandate, mandate.id).status is MandateStatus.LAPSED


def test_collect_command(app, demo):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["collect-debits", "--day", "15", "--month", "2026-12"]).exit_code != 0
    result = runner.invoke(args=["collect-debits", "--day", "7", "--month", "2026-13"])
    assert result.exit_code != 0
    month = (date.today().replace(day=1) + timedelta(days=32)).replace(day=1)
    result = runner.invoke(args=["collect-debits", "--day", "2", "--month", f"{month:%Y-%m}"])
    assert result.exit_code == 0 and ("Batch" in result.output or "Nothing to collect" in result.output)
