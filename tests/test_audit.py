"""Issue 12, point 5: every staff change to a household's data is recorded (who, when, what, before and after),
shown on the household page (tab « Historique ») and never editable. A tenant's own changes are not recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import g
from flask_appbuilder.security.sqla.models import User

from app.extensions import db
from app.models import (
    Agency, AuditEvent, DirectDebitMandate, Household, InsuranceCertificate, Lease, ReviewStatus, TenantAccount, utcnow,
)
from tests.conftest import csrf_token

STAFF = "gestionnaire@example.org"
NEW_IBAN = "FR7630006000011234567890189"


def events(app, household_id: int) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.household_id == household_id)
                                  .order_by(AuditEvent.id)).all()
        return [{"user": row.user.email if row.user else None, "created_at": row.created_at,
                 "entity_type": row.entity_type, "entity_id": row.entity_id, "action": row.action,
                 "changes": row.changes, "summary": row.summary} for row in rows]


def staff_id(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(User.id).where(User.email == STAFF))


def household_form(household: Household, **changes) -> dict:
    """The staff edit form of a household, as it is filled in for that household."""
    values = {
        "client_number": household.client_number, "agency": str(household.agency_id),
        "signatory_civility": household.signatory_civility.name,
        "signatory_last_name": household.signatory_last_name,
        "signatory_first_name": household.signatory_first_name, "email": household.email or "",
        "phone": household.phone or "",
        "professional_situation": household.professional_situation.name if household.professional_situation else "",
        "billing_street": household.billing_street, "billing_complement": household.billing_complement or "",
        "billing_postcode": household.billing_postcode, "billing_city": household.billing_city,
    }
    if household.paperless_consent:
        values["paperless_consent"] = "y"
    if household.payment_incident:
        values["payment_incident"] = "y"
    values.update(changes)
    return values


def edit_phone(app, client, household_id: int, phone: str):
    with app.app_context():
        household = db.session.get(Household, household_id)
        form, before = household_form(household, phone=phone), household.phone
    url = f"/staffhouseholdview/edit/{household_id}"
    response = client.post(url, data=dict(form, csrf_token=csrf_token(client, url)))
    assert response.status_code == 302
    return before


def test_a_staff_edit_of_a_household_records_who_when_before_and_after(app, client_for, demo):
    staff = client_for(STAFF)
    started = utcnow()
    before = edit_phone(app, staff, demo["locataire"], "01 02 03 04 05")
    assert before and before != "01 02 03 04 05"
    (event,) = events(app, demo["locataire"])
    assert event["user"] == STAFF
    assert started - timedelta(seconds=1) <= event["created_at"] <= utcnow()
    assert (event["entity_type"], event["entity_id"], event["action"]) == ("household", demo["locataire"], "changed")
    assert event["changes"] == {"phone": [before, "01 02 03 04 05"]}  # the unchanged fields are not listed
    assert event["summary"].startswith("Modification : foyer « ")


def test_the_history_tab_of_the_household_page_lists_staff_changes_newest_first(app, client_for, demo):
    staff = client_for(STAFF)
    before = edit_phone(app, staff, demo["locataire"], "01 02 03 04 05")
    edit_phone(app, staff, demo["locataire"], "01 99 99 99 99")
    page = staff.get(f"/agence/foyers/{demo['locataire']}").get_data(as_text=True)
    assert "Historique" in page
    assert f"Téléphone : {before} → 01 02 03 04 05" in page
    assert "Téléphone : 01 02 03 04 05 → 01 99 99 99 99" in page
    assert page.index("→ 01 99 99 99 99") < page.index(f"{before} → 01 02 03 04 05")  # newest first
    assert "Gaston Gestionnaire" in page
    other = staff.get(f"/agence/foyers/{demo['other']}").get_data(as_text=True)
    assert "01 99 99 99 99" not in other  # each household shows its own history


def test_staff_of_one_agency_see_the_history_of_its_households_only(app, client_for, demo):
    with app.app_context():
        db.session.get(Household, demo["retard"]).agency_id = db.session.scalar(
            sa.select(Agency.id).where(Agency.code == "AG-TRS"))
        db.session.commit()
    staff = client_for(STAFF)
    edit_phone(app, staff, demo["retard"], "01 02 03 04 05")  # a household of Tours
    edit_phone(app, staff, demo["locataire"], "01 99 99 99 99")  # a household of Orléans
    listing = client_for("agence@example.org").get("/staffauditeventview/list/").get_data(as_text=True)
    assert "01 99 99 99 99" in listing and "01 02 03 04 05" not in listing


def test_disabling_a_portal_account_is_recorded_on_its_household(app, client_for, demo):
    with app.app_context():
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == demo["retard"]))
        account_id, user_id, email = account.id, account.user_id, account.user.email
    staff = client_for(STAFF)
    token = csrf_token(staff, "/stafftenantaccountview/list/")
    response = staff.post("/stafftenantaccountview/action_post",
                          data={"csrf_token": token, "action": "disable", "rowid": [str(account_id)]})
    assert response.status_code == 302
    (event,) = events(app, demo["retard"])
    assert (event["entity_type"], event["entity_id"], event["action"]) == ("ab_user", user_id, "account_disabled")
    assert event["changes"] == {"active": [True, False]} and event["user"] == STAFF
    assert event["summary"] == f"Compte de l'espace locataire désactivé : {email}"
    page = staff.get(f"/agence/foyers/{demo['retard']}").get_data(as_text=True)
    assert "Actif : Oui → Non" in page


def test_an_insurance_validation_at_the_desk_is_recorded(app, client_for, demo):
    with app.app_context():
        certificate = db.session.scalar(sa.select(InsuranceCertificate).where(
            InsuranceCertificate.household_id == demo["locataire"]).order_by(InsuranceCertificate.id.desc()))
        certificate.status, certificate.decided_at, certificate.decided_by_id = ReviewStatus.PENDING, None, None
        db.session.commit()  # outside a request: not recorded
        certificate_id = certificate.id
    assert events(app, demo["locataire"]) == []
    staff = client_for(STAFF)
    url = f"/agence/assurances/{certificate_id}"
    assert staff.post(url, data={"csrf_token": csrf_token(staff, url), "decision": "VALIDATED"}).status_code == 302
    (event,) = events(app, demo["locataire"])
    assert (event["entity_type"], event["entity_id"]) == ("insurance_certificate", certificate_id)
    assert event["action"] == "status_changed" and event["user"] == STAFF
    assert event["changes"]["status"] == ["PENDING", "VALIDATED"]
    assert event["changes"]["decided_by_id"] == [None, staff_id(app)]
    assert event["summary"].endswith(" : En attente de validation → Validée")
    page = staff.get(f"/agence/foyers/{demo['locataire']}").get_data(as_text=True)
    assert "Statut : En attente de validation → Validée" in page


def test_a_ledger_correction_is_recorded_with_its_amount(app, client_for, demo):
    with app.app_context():
        household = db.session.get(Household, demo["retard"])
        client_number, lease_number = household.client_number, db.session.get(Lease, demo["retard_lease"]).number
    staff = client_for(STAFF)
    data = {"csrf_token": csrf_token(staff, "/staffledgerentryview/add"), "household": client_number,
            "lease": lease_number, "kind": "CHEQUE", "direction": "CREDIT", "amount": "50",
            "label": "Chèque reçu à l'agence", "entry_date": "2026-11-02", "period": "2026-11"}
    assert staff.post("/staffledgerentryview/add", data=data).status_code == 302
    (event,) = events(app, demo["retard"])
    assert (event["entity_type"], event["action"], event["user"]) == ("ledger_entry", "created", STAFF)
    assert event["changes"]["amount"] == [None, "50.00"]  # money as text with its two decimals
    assert event["changes"]["entry_date"] == [None, "2026-11-02"] and event["changes"]["kind"] == [None, "CHEQUE"]
    assert event["changes"]["lease_id"] == [None, demo["retard_lease"]]
    assert event["summary"] == "Ajout : écriture « Chèque reçu à l'agence »"
    page = staff.get(f"/agence/foyers/{demo['retard']}").get_data(as_text=True)
    assert "Montant : — → 50,00" in page and "Date : — → 02/11/2026" in page


def test_a_tenant_s_own_change_is_not_recorded_as_a_staff_action(app, client_for, demo):
    tenant = client_for("locataire@example.org")
    response = tenant.post("/mon-compte/coordonnees", data={
        "contact-csrf_token": csrf_token(tenant, "/mon-compte/"), "contact-phone": "0612345678",
        "contact-professional_situation": "RETIRED"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Household, demo["locataire"]).phone == "06 12 34 56 78"
    assert events(app, demo["locataire"]) == []
    edit_phone(app, client_for(STAFF), demo["locataire"], "01 02 03 04 05")  # then staff change it: recorded
    (event,) = events(app, demo["locataire"])
    assert event["user"] == STAFF and event["changes"] == {"phone": ["06 12 34 56 78", "01 02 03 04 05"]}


def test_an_iban_change_never_stores_the_full_iban(app, demo):
    """No staff screen edits bank details today: a change made by any code in a staff request is recorded masked."""
    with app.test_request_context():
        g._login_user = db.session.scalar(sa.select(User).where(User.email == STAFF))
        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["locataire"]))
        old_iban, mandate_id = mandate.iban.replace(" ", ""), mandate.id
        mandate.iban = NEW_IBAN
        db.session.commit()
        db.session.remove()
    (event,) = events(app, demo["locataire"])
    assert (event["entity_type"], event["entity_id"]) == ("direct_debit_mandate", mandate_id)
    assert event["changes"] == {"iban": [f"{old_iban[:4]} **** **** {old_iban[-3:]}", "FR76 **** **** 189"]}
    with app.app_context():
        raw = db.session.execute(sa.text("SELECT * FROM audit_event")).all()
    stored = " ".join(str(value) for row in raw for value in row)
    for iban in (old_iban, NEW_IBAN):
        assert iban not in stored and iban[4:-3] not in stored


@pytest.mark.parametrize("method, path", [
    ("get", "/staffauditeventview/edit/1"), ("post", "/staffauditeventview/edit/1"),
    ("get", "/staffauditeventview/delete/1"), ("post", "/staffauditeventview/delete/1"),
    ("get", "/staffauditeventview/add"), ("get", "/staffauditeventview/show/1"),
    ("post", "/staffauditeventview/action_post"),
])
def test_no_route_changes_or_deletes_an_audit_event(app, client_for, demo, method, path):
    staff = client_for(STAFF)
    edit_phone(app, staff, demo["locataire"], "01 02 03 04 05")
    with app.app_context():
        event_id = db.session.scalar(sa.select(AuditEvent.id))
    path = path.replace("/1", f"/{event_id}")
    for client in (staff, client_for("admin@example.org")):
        response = getattr(client, method)(path, data={"csrf_token": csrf_token(client, "/staffhouseholdview/list/")})
        assert response.status_code in (404, 405), (path, response.status_code)
    assert len(events(app, demo["locataire"])) == 1
    assert staff.get("/staffauditeventview/list/").status_code == 200
    assert client_for("locataire@example.org").get("/staffauditeventview/list/").status_code in (302, 403)


def test_the_orm_refuses_to_change_or_delete_an_audit_event(app, client_for, demo):
    from app.services.audit import AuditTrailError

    edit_phone(app, client_for(STAFF), demo["locataire"], "01 02 03 04 05")
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent))
        event.summary = "rien"
        with pytest.raises(AuditTrailError):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.scalar(sa.select(AuditEvent)))
        with pytest.raises(AuditTrailError):
            db.session.commit()
        db.session.rollback()
        for statement in (sa.update(AuditEvent).values(summary="rien"), sa.delete(AuditEvent)):
            with pytest.raises(AuditTrailError):
                db.session.execute(statement)
            db.session.rollback()
    (event,) = events(app, demo["locataire"])
    assert event["summary"] != "rien"


def test_staff_clear_a_payment_incident_by_unticking_it(app, client_for, demo):
    """The household form's checkboxes were required (Flask-AppBuilder's NOT NULL rule): unticked, the form never
    saved, so a payment incident could not be cleared from that screen."""
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        household.payment_incident = True
        db.session.commit()
        form = household_form(household)
    form.pop("payment_incident")  # unticked
    staff = client_for(STAFF)
    url = f"/staffhouseholdview/edit/{demo['locataire']}"
    assert staff.post(url, data=dict(form, csrf_token=csrf_token(staff, url))).status_code == 302
    with app.app_context():
        assert db.session.get(Household, demo["locataire"]).payment_incident is False

