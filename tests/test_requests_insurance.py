"""Requests and home-insurance certificates, tenant and staff sides, with the attacks on uploads, markup and the
household wall."""

from __future__ import annotations

import html
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Attachment, InsuranceCertificate, Occupant, OutgoingMail, RequestCategory, RequestEvent,
    RequestStatus, ReviewStatus, TenantRequest, utcnow,
)
from app.services import insurance, requests
from tests.conftest import csrf_token
from tests.samples import pdf_bytes, png_bytes

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def text(response) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def new_request(client, files=(), **overrides):
    data = {"csrf_token": csrf_token(client, "/demandes/nouvelle"), "category": "PLUMBING",
            "subject": "Fuite sous l'évier", "description": "L'eau coule depuis hier soir.",
            "availability": "En semaine après 17 h", "presence_needed": "y"}
    data.update(overrides)
    data["attachments"] = [(io.BytesIO(content), name) for name, content in files]
    return client.post("/demandes/nouvelle", data=data, content_type="multipart/form-data")


def only_request(app, household_id) -> TenantRequest:
    with app.app_context():
        return db.session.scalar(sa.select(TenantRequest).where(TenantRequest.household_id == household_id)
                                 .order_by(TenantRequest.id.desc()))


# --- requests, tenant side ------------------------------------------------------------------------------------------

def test_tenant_files_a_technical_request_with_a_photo(app, client_for, demo):
    client = client_for("locataire@example.org")
    response = new_request(client, files=[("evier.png", png_bytes())])
    assert response.status_code == 302
    created = only_request(app, demo["locataire"])
    assert created.category is RequestCategory.PLUMBING and created.kind.name == "TECHNICAL"
    with app.app_context():
        assert created.number.startswith("D")
        assert created.agency_id == db.session.get(TenantRequest, created.id).household.agency_id
    assert "Présence du locataire nécessaire : oui" in created.access_info
    page = text(client.get(f"/demandes/{created.id}"))
    assert created.number in page and "3 jours ouvrés" in page and "evier.png" in page
    with app.app_context():
        attachment = db.session.scalar(sa.select(Attachment).join(RequestEvent).where(
            RequestEvent.request_id == created.id))
        assert attachment.content_type == "image/png" and attachment.stored_name.endswith(".png")
    download = client.get(f"/demandes/piece/{attachment.id}")
    assert download.status_code == 200 and download.data == png_bytes()
    assert download.headers["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize("name, content, message", [
    ("photo.jpg", b"<html><script>alert(1)</script></html>", "Seules les photos"),
    ("facture.pdf", b"MZ\x90\x00\x03 this is a windows executable", "Seules les photos"),
    ("photo.png", b"\x89PNG\r\n\x1a\n this is not really a png", "endommagé"),
    ("vide.pdf", b"", "vide"),
    ("enorme.pdf", b"%PDF-1.4\n" + b"0" * (8 * 1024 * 1024 + 10), "8 Mo"),
])
def test_bad_uploads_are_refused_and_nothing_is_written(app, client_for, demo, name, content, message):
    def counts():
        with app.app_context():
            return (db.session.scalar(sa.select(sa.func.count(TenantRequest.id))),
                    db.session.scalar(sa.select(sa.func.count(Attachment.id))))

    before = counts()
    response = new_request(client_for("locataire@example.org"), files=[(name, content)])
    assert response.status_code == 400 and message in text(response)
    assert counts() == before


def test_a_path_in_the_file_name_is_only_a_name(app, client_for, demo):
    new_request(client_for("locataire@example.org"), files=[("../../etc/passwd.pdf", pdf_bytes())])
    with app.app_context():
        attachment = db.session.scalar(sa.select(Attachment).order_by(Attachment.id.desc()))
        assert attachment.original_filename == "passwd.pdf"
        assert "/" not in attachment.stored_name and ".." not in attachment.stored_name


def test_markup_is_shown_as_text_for_tenant_staff_and_mail(app, client_for, demo, mailbox):
    tenant = client_for("locataire@example.org")
    new_request(tenant, subject=XSS, description=XSS)
    created = only_request(app, demo["locataire"])
    staff_client = client_for("gestionnaire@example.org")
    for client, url in ((tenant, f"/demandes/{created.id}"), (tenant, "/demandes/"),
                        (staff_client, f"/agence/demandes/{created.id}"),
                        (staff_client, f"/staffrequesteventview/list/?_flt_0_request={created.id}")):
        raw = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in raw and "<img src=x" not in raw, url
    assert "&lt;script&gt;" in tenant.get(f"/demandes/{created.id}").get_data(as_text=True)
    staff = client_for("gestionnaire@example.org")
    staff.post(f"/agence/demandes/{created.id}/reponse", data={
        "reply-csrf_token": csrf_token(staff, f"/agence/demandes/{created.id}"), "reply-body": XSS})
    mailbox.deliver()
    message = mailbox.last_to("locataire@example.org")
    body = message.get_body(preferencelist=("html",)).get_content()
    assert "<script>" not in body and "&lt;script&gt;" in body


def test_tenant_adds_information_and_a_waiting_request_goes_back_to_the_agency(app, client_for, demo):
    client = client_for("locataire@example.org")
    new_request(client)
    created = only_request(app, demo["locataire"])
    with app.app_context():
        item = db.session.get(TenantRequest, created.id)
        item.status = RequestStatus.WAITING_TENANT
        db.session.commit()
    response = client.post(f"/demandes/{created.id}/complement", data={
        "add-csrf_token": csrf_token(client, f"/demandes/{created.id}"), "add-body": "Le plombier peut passer mardi."},
        content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        item = db.session.get(TenantRequest, created.id)
        assert item.status is RequestStatus.IN_PROGRESS
        assert any(e.body == "Le plombier peut passer mardi." for e in item.events)
    empty = client.post(f"/demandes/{created.id}/complement", data={
        "add-csrf_token": csrf_token(client, f"/demandes/{created.id}"), "add-body": ""},
        content_type="multipart/form-data")
    assert empty.status_code == 400 and "Écrivez un message ou joignez un fichier." in text(empty)


def test_rating_and_reopening_within_15_days(app, client_for, demo):
    client = client_for("locataire@example.org")
    new_request(client)
    created = only_request(app, demo["locataire"])
    url = f"/demandes/{created.id}"
    refused = client.post(f"{url}/avis", data={"rate-csrf_token": csrf_token(client, url), "rate-rating": "4"})
    assert refused.status_code == 400 and "quand la demande sera résolue" in text(refused)
    with app.app_context():
        item = db.session.get(TenantRequest, created.id)
        item.status, item.resolved_at = RequestStatus.RESOLVED, utcnow() - timedelta(days=3)
        db.session.commit()
    assert client.post(f"{url}/avis", data={"rate-csrf_token": csrf_token(client, url),
                                            "rate-rating": "4"}).status_code == 302
    assert client.post(f"{url}/reouvrir", data={"reopen-csrf_token": csrf_token(client, url),
                                                 "reopen-reason": "La fuite a repris."}).status_code == 302
    with app.app_context():
        item = db.session.get(TenantRequest, created.id)
        assert item.rating == 4 and item.status is RequestStatus.IN_PROGRESS
        item.status, item.resolved_at = RequestStatus.RESOLVED, utcnow() - timedelta(days=16)
        db.session.commit()
    late = client.post(f"{url}/reouvrir", data={"reopen-csrf_token": csrf_token(client, url),
                                                "reopen-reason": "Encore."})
    assert late.status_code == 400 and "15 jours" in text(late)


# --- the household wall, internal notes, status -------------------------------------------------------------------

def test_another_households_request_and_attachment_are_404_and_nothing_is_written(app, client_for, demo):
    owner = client_for("locataire@example.org")
    new_request(owner, files=[("photo.png", png_bytes())])
    created = only_request(app, demo["locataire"])
    with app.app_context():
        attachment_id = db.session.scalar(sa.select(Attachment.id).join(RequestEvent).where(
            RequestEvent.request_id == created.id))
        events_before = db.session.scalar(sa.select(sa.func.count(RequestEvent.id)))
    intruder = client_for("retard@example.org")
    token = csrf_token(intruder, "/demandes/nouvelle")
    assert intruder.get(f"/demandes/{created.id}").status_code == 404
    assert intruder.get(f"/demandes/piece/{attachment_id}").status_code == 404
    for path, data in ((f"/demandes/{created.id}/complement", {"add-csrf_token": token, "add-body": "intrus"}),
                       (f"/demandes/{created.id}/avis", {"rate-csrf_token": token, "rate-rating": "1"}),
                       (f"/demandes/{created.id}/reouvrir", {"reopen-csrf_token": token, "reopen-reason": "x"})):
        assert intruder.post(path, data=data).status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(RequestEvent.id))) == events_before
        assert db.session.get(TenantRequest, created.id).rating is None


def test_tenants_never_see_internal_notes_nor_reach_the_staff_desk(app, client_for, demo):
    tenant = client_for("locataire@example.org")
    new_request(tenant, files=[("photo.png", png_bytes())])
    created = only_request(app, demo["locataire"])
    staff = client_for("gestionnaire@example.org")
    token = csrf_token(staff, f"/agence/demandes/{created.id}")
    staff.post(f"/agence/demandes/{created.id}/reponse", data={
        "reply-csrf_token": token, "reply-body": "Locataire difficile, prévoir deux techniciens", "reply-internal": "y",
        "reply-attachments": [(io.BytesIO(pdf_bytes()), "interne.pdf")]}, content_type="multipart/form-data")
    with app.app_context():
        internal_attachment = db.session.scalar(sa.select(Attachment.id).where(
            Attachment.original_filename == "interne.pdf"))
    page = text(tenant.get(f"/demandes/{created.id}"))
    assert "deux techniciens" not in page and "interne.pdf" not in page
    assert tenant.get(f"/demandes/piece/{internal_attachment}").status_code == 404
    assert tenant.get(f"/agence/demandes/{created.id}").status_code in (403, 404)
    forged = tenant.post(f"/agence/demandes/{created.id}/statut", data={
        "status-csrf_token": csrf_token(tenant, "/demandes/nouvelle"), "status-status": "CLOSED"})
    assert forged.status_code in (302, 403, 404)
    assert only_request(app, demo["locataire"]).status is RequestStatus.SUBMITTED
    assert "deux techniciens" in text(staff.get(f"/agence/demandes/{created.id}"))


def test_staff_status_change_and_reply_email_the_tenant(app, client_for, demo, mailbox):
    new_request(client_for("locataire@example.org"))
    created = only_request(app, demo["locataire"])
    staff = client_for("gestionnaire@example.org")
    url = f"/agence/demandes/{created.id}"
    assert staff.post(f"{url}/statut", data={"status-csrf_token": csrf_token(staff, url),
                                             "status-status": "IN_PROGRESS",
                                             "status-comment": "Un plombier passe jeudi."}).status_code == 302
    assert staff.post(f"{url}/reponse", data={"reply-csrf_token": csrf_token(staff, url),
                                              "reply-body": "Merci de laisser l'accès libre."}).status_code == 302
    mailbox.deliver()
    mails = mailbox.to("locataire@example.org")
    assert len(mails) == 2 and "En cours" in mails[0]["Subject"]
    assert "Un plombier passe jeudi." in mails[0].get_body(preferencelist=("plain",)).get_content()
    assert only_request(app, demo["locataire"]).status is RequestStatus.IN_PROGRESS


def test_accepting_an_occupant_declaration_updates_the_occupants(app, client_for, demo):
    tenant = client_for("locataire@example.org")
    tenant.post("/contrat/occupant/arrivee", data={
        "csrf_token": csrf_token(tenant, "/contrat/occupant/arrivee"), "first_name": "Noé", "last_name": "Martin",
        "relation": "CHILD", "arrival_date": "2026-09-03"})
    created = only_request(app, demo["locataire"])
    staff = client_for("gestionnaire@example.org")
    url = f"/agence/demandes/{created.id}"
    staff.post(f"{url}/statut", data={"status-csrf_token": csrf_token(staff, url), "status-status": "RESOLVED"})
    with app.app_context():
        assert db.session.scalar(sa.select(Occupant).where(Occupant.first_name == "Noé",
                                                           Occupant.household_id == demo["locataire"]))
    assert "Noé Martin" in text(tenant.get("/contrat/"))


# --- insurance ------------------------------------------------------------------------------------------------------

def send_certificate(client, content=None, start="2026-09-01", end="2027-08-31", name="attestation.pdf"):
    return client.post("/contrat/assurance", data={
        "csrf_token": csrf_token(client, "/contrat/assurance"), "insurer": "MAIF", "policy_number": "A-123",
        "start_date": start, "end_date": end,
        "document": (io.BytesIO(pdf_bytes() if content is None else content), name)},
        content_type="multipart/form-data")


def latest_certificate(app, household_id):
    with app.app_context():
        return db.session.scalar(sa.select(InsuranceCertificate).where(
            InsuranceCertificate.household_id == household_id).order_by(InsuranceCertificate.id.desc()))


def test_insurance_form_is_prefilled_and_refuses_bad_dates_and_files(app, client_for, demo):
    client = client_for("locataire@example.org")
    previous = latest_certificate(app, demo["locataire"])
    page = client.get("/contrat/assurance").get_data(as_text=True)
    assert f'value="{previous.insurer}"' in page and f'value="{previous.policy_number}"' in page
    before = previous.id
    bad_dates = send_certificate(client, start="2027-08-31", end="2026-09-01")
    assert bad_dates.status_code == 400 and "La date de fin doit être après la date de début." in text(bad_dates)
    fake = send_certificate(client, content=b"<html>pas un pdf</html>")
    assert fake.status_code == 400 and "Seuls les fichiers PDF sont acceptés." in text(fake)
    image = send_certificate(client, content=png_bytes(), name="attestation.pdf")
    assert image.status_code == 400
    assert latest_certificate(app, demo["locataire"]).id == before


def test_insurance_submitted_validated_and_reminded(app, client_for, demo, mailbox):
    tenant = client_for("locataire@example.org")
    assert send_certificate(tenant).status_code == 302
    certificate = latest_certificate(app, demo["locataire"])
    assert certificate.status is ReviewStatus.PENDING and certificate.stored_name
    staff = client_for("gestionnaire@example.org")
    queue = text(staff.get("/staffinsurancequeueview/list/"))
    assert "objectif : 48 heures" in queue
    url = f"/agence/assurances/{certificate.id}"
    assert staff.get(f"{url}/fichier").data[:4] == b"%PDF"
    no_reason = staff.post(url, data={"csrf_token": csrf_token(staff, url), "decision": "REFUSED", "reason": ""})
    assert no_reason.status_code == 400 and "Indiquez le motif" in text(no_reason)
    assert staff.post(url, data={"csrf_token": csrf_token(staff, url), "decision": "VALIDATED"}).status_code == 302
    assert latest_certificate(app, demo["locataire"]).status is ReviewStatus.VALIDATED
    mailbox.deliver()
    assert "validée" in mailbox.last_to("locataire@example.org")["Subject"].lower()
    assert tenant.get(f"{url}/fichier").status_code in (403, 404)
    with app.app_context():
        soon = utcnow().replace(year=2027, month=8, day=5)
        assert insurance.send_reminders(soon) >= 1  # other demo tenants' certificates end that day too
        assert insurance.send_reminders(soon) == 0
        after = utcnow().replace(year=2027, month=9, day=2)
        assert insurance.send_reminders(after) >= 1
        assert insurance.send_reminders(after) == 0
        subjects = db.session.scalars(sa.select(OutgoingMail.subject).where(
            OutgoingMail.recipient == "locataire@example.org")).all()
    assert "Votre assurance habitation expire bientôt" in subjects
    assert "Votre assurance habitation a expiré" in subjects


def test_a_certificate_decided_by_a_colleague_meanwhile_is_not_decided_again(app, client_for, demo, mailbox):
    """Two staff members open the same certificate; the second decision is refused with who decided and when, and
    changes nothing (no second mail to the tenant)."""
    tenant = client_for("locataire@example.org")
    assert send_certificate(tenant).status_code == 302
    certificate = latest_certificate(app, demo["locataire"])
    url = f"/agence/assurances/{certificate.id}"
    first, second = client_for("gestionnaire@example.org"), client_for("admin@example.org")
    first_token, second_token = csrf_token(first, url), csrf_token(second, url)  # both pages open
    assert first.post(url, data={"csrf_token": first_token, "decision": "VALIDATED"}).status_code == 302
    mailbox.deliver()  # the tenant's mail about the first decision
    late = second.post(url, data={"csrf_token": second_token, "decision": "REFUSED", "reason": "Illisible"})
    assert late.status_code == 400
    assert "Cette attestation a déjà été traitée (Validée) par Gaston Gestionnaire" in text(late)
    assert latest_certificate(app, demo["locataire"]).status is ReviewStatus.VALIDATED
    assert mailbox.deliver() == 0


def test_tenant_cannot_decide_on_its_own_certificate(app, client_for, demo):
    tenant = client_for("locataire@example.org")
    send_certificate(tenant)
    certificate = latest_certificate(app, demo["locataire"])
    response = tenant.post(f"/agence/assurances/{certificate.id}", data={
        "csrf_token": csrf_token(tenant, "/contrat/assurance"), "decision": "VALIDATED"})
    assert response.status_code in (302, 403, 404)
    assert latest_certificate(app, demo["locataire"]).status is ReviewStatus.PENDING


def test_handling_time_per_category():
    assert requests.handling_days(RequestCategory.LIFT) == 2
    assert requests.handling_days(RequestCategory.BILLING_ADDRESS) == requests.ADMINISTRATIVE_DAYS
