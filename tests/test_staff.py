"""The staff back office: household detail, forms typed by business key, append-only ledger."""

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import Household, Lease, LedgerEntry, Unit
from tests.conftest import csrf_token


def test_household_page_shows_leases_ledger_and_documents(app, client_for, demo):
    client = client_for("gestionnaire@example.org")
    page = client.get(f"/agence/foyers/{demo['locataire']}").get_data(as_text=True)
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        numbers = [lease.display_number for lease in household.leases]
    assert household.client_number in page
    for number in numbers:
        assert number in page
    assert "Avis d&#39;échéance" in page or "Avis d'échéance" in page
    assert "Solde" in page and "€" in page


def test_household_search_by_client_number(app, client_for, demo):
    with app.app_context():
        wanted = db.session.get(Household, demo["retard"]).client_number
    client = client_for("gestionnaire@example.org")
    page = client.get(f"/staffhouseholdview/list/?_flt_0_client_number={wanted}").get_data(as_text=True)
    assert wanted in page
    assert page.count("/staffhouseholdview/show/") == 1


def _lease_form(client, **values):
    data = {"csrf_token": csrf_token(client, "/staffleaseview/add"), "number": "999001", "start_date": "2026-01-01",
            "rent": "410.50", "charges": "90.00", "housing_benefit": "0", "deposit": "410.50"}
    data.update(values)
    return client.post("/staffleaseview/add", data=data)


def test_staff_creates_a_lease_by_client_number_and_unit_reference(app, client_for, demo):
    with app.app_context():
        household = db.session.get(Household, demo["other"])
        unit = db.session.scalar(sa.select(Unit).order_by(Unit.id.desc()))
        client_number, reference = household.client_number, unit.reference
    client = client_for("gestionnaire@example.org")
    response = _lease_form(client, household=client_number, unit=reference)
    assert response.status_code == 302
    with app.app_context():
        lease = db.session.scalar(sa.select(Lease).where(Lease.number == "999001"))
        assert lease.household.client_number == client_number and lease.unit.reference == reference


def test_unknown_client_number_is_explained_next_to_the_field(app, client_for, demo):
    client = client_for("gestionnaire@example.org")
    with app.app_context():
        reference = db.session.scalar(sa.select(Unit.reference))
    response = _lease_form(client, household="00000000", unit=reference)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Aucun foyer ne porte ce numéro client." in page
    with app.app_context():
        assert db.session.scalar(sa.select(Lease).where(Lease.number == "999001")) is None


def test_ledger_entry_must_belong_to_the_household_and_cannot_be_edited(app, client_for, demo):
    with app.app_context():
        other = db.session.get(Household, demo["other"]).client_number
        foreign_lease = db.session.get(Lease, demo["retard_lease"]).number
        before = db.session.scalar(sa.select(sa.func.count(LedgerEntry.id)))
        entry_id = db.session.scalar(sa.select(LedgerEntry.id))
    client = client_for("gestionnaire@example.org")
    data = {"csrf_token": csrf_token(client, "/staffledgerentryview/add"), "household": other,
            "lease": foreign_lease, "kind": "CHEQUE", "direction": "CREDIT", "amount": "50.00",
            "label": "Chèque", "entry_date": "2026-11-02", "period": "2026-11"}
    client.post("/staffledgerentryview/add", data=data)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) == before
    assert client.get(f"/staffledgerentryview/edit/{entry_id}").status_code == 403
    assert client.post(f"/staffledgerentryview/delete/{entry_id}",
                       data={"csrf_token": data["csrf_token"]}).status_code == 403


def test_delete_through_get_does_nothing(app, client_for, demo):
    client = client_for("admin@example.org")
    with app.app_context():
        agency_count = db.session.scalar(sa.select(sa.func.count()).select_from(Household))
    client.get(f"/staffhouseholdview/delete/{demo['other']}")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Household)) == agency_count


def test_enum_selects_are_translated(client_for, demo):
    page = client_for("gestionnaire@example.org").get("/staffunitview/add").get_data(as_text=True)
    assert re.search(r'<option[^>]*value="PARKING"[^>]*>Stationnement</option>', page)


def test_household_linked_lists_are_searched_by_client_number(app, client_for, demo):
    with app.app_context():
        household = db.session.get(Household, demo["retard"])
        number, leases = household.client_number, [lease.display_number for lease in household.leases]
        others = [lease.display_number for lease in db.session.get(Household, demo["locataire"]).leases]
    client = client_for("gestionnaire@example.org")
    page = client.get("/staffleaseview/list/").get_data(as_text=True)
    assert 'name="household"' in page and "<select" not in page.split('name="household"')[0][-300:]
    page = client.get(f"/staffleaseview/list/?_flt_0_household={number}").get_data(as_text=True)
    assert all(n in page for n in leases) and not any(n in page for n in others)
    payments = client.get(f"/staffpaymentview/list/?_flt_0_household={number}").get_data(as_text=True)
    assert "Foyer" in payments and page.count("/staffleaseview/show/") == len(leases)
