"""SEPA direct debit: bank details, subscription with a review step, the mandate PDF, staff activation, the
collection file validated against the official XSD, rejects, lapse, and the household wall."""

from __future__ import annotations

import html
import io
import os
import re
from datetime import date, timedelta

import pytest
import sepaxml
import sqlalchemy as sa
import xmlschema
from pypdf import PdfReader

from app import create_app
from app.extensions import db
from app.models import (
    DirectDebitMandate, Document, DocumentKind, Household,
    MandateStatus, OutgoingMail, utcnow,
)
from app.services import sepa
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
    """Post the form as a browser would: the leases ticked by default (every current lease) unless overridden."""
    form = client.get("/paiement/prelevement").get_data(as_text=True)
    leases = re.findall(r'name="leases" value="(\d+)" checked', form)
    data = {"csrf_token": csrf_token(client, "/paiement/prelevement"), "iban": GOOD_IBAN, "bic": "", "leases": leases,
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
    with app.app_context():  # the default: every current lease of the household
        covered = db.session.get(DirectDebitMandate, mandate.id).leases
        assert [lease.id for lease in covered] == [demo["retard_lease"]]
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


def test_a_mandate_covers_the_leases_the_tenant_picks(app, client_for, demo):
    """A household with a dwelling and a parking: both by default, or only the one ticked."""
    client = client_for("locataire@example.org")
    with app.app_context():
        leases = [lease.id for lease in db.session.get(Household, demo["locataire"]).leases]
        db.session.execute(sa.update(DirectDebitMandate).where(DirectDebitMandate.household_id == demo["locataire"])
                           .values(status=MandateStatus.REVOKED))
        db.session.commit()
    assert len(leases) == 2
    form = client.get("/paiement/prelevement").get_data(as_text=True)
    assert all(f'id="leases-{lease_id}" name="leases" value="{lease_id}" checked' in form for lease_id in leases)
    none = subscribe_step1(client, leases=[])
    assert none.status_code == 400 and "Choisissez au moins un contrat." in text(none)
    foreign = subscribe_step1(client, leases=[str(demo["other_lease"])])
    assert foreign.status_code == 400 and "Choisissez parmi vos contrats en cours." in text(foreign)
    review = subscribe_step1(client, leases=[str(leases[1])])
    assert review.status_code == 200 and "Stationnement" in text(review)
    client.post("/paiement/prelevement/valider", data={"csrf_token": csrf_token(client, "/paiement/")})
    with app.app_context():
        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["locataire"],
            DirectDebitMandate.status == MandateStatus.PENDING_SIGNATURE))
        assert [lease.id for lease in mandate.leases] == [leases[1]]
        document = db.session.scalar(sa.select(Document.id).where(Document.mandate_id == mandate.id))
    pdf = client.get(f"/documents/{document}")
    content = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages).split())
    assert "Stationnement" in content and "Logement" not in content.split("Contrats concernés")[1][:40]
    assert "au moins 14 jours avant" in content


def test_a_mandate_decided_by_a_colleague_meanwhile_is_not_decided_again(app, client_for, demo):
    """Two staff members open the same pending mandate; the second decision says a colleague decided it and
    changes nothing."""
    assert subscribe(client_for("retard@example.org")).status_code == 302
    [mandate] = mandates(app, demo["retard"])
    url = f"/agence/mandats/{mandate.id}"
    first, second = client_for("gestionnaire@example.org"), client_for("admin@example.org")
    first_token, second_token = csrf_token(first, url), csrf_token(second, url)
    today = date.today().isoformat()
    assert first.post(url, data={"csrf_token": first_token, "decision": "activate",
                                 "signed_on": today}).status_code == 302
    late = second.post(url, data={"csrf_token": second_token, "decision": "refuse", "reason": "RIB illisible"})
    assert late.status_code == 400 and "un collègue l&#39;a sans doute déjà traité" in late.get_data(as_text=True)
    [mandate] = mandates(app, demo["retard"])
    assert mandate.status is MandateStatus.ACTIVE and mandate.decision_reason is None
