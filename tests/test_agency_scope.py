"""Issue 12, point 5: a staff member of one agency sees and acts on that agency's households only (another
agency's household is a 404, everywhere), unless they hold the landlord-wide role; landlord-wide operations are
refused to them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_appbuilder.security.sqla.models import User

from app.extensions import db
from app.models import Agency, Household, LedgerEntry, TenantAccount, TenantRequest
from tests.conftest import csrf_token

AGENT = "agence@example.org"  # Staff, attached to the Orléans agency (AG-ORL)


@pytest.fixture
def elsewhere(app, demo):
    """Karim Benali's household (with a portal account, a request) moved to the Tours agency."""
    with app.app_context():
        household = db.session.get(Household, demo["retard"])
        household.agency_id = db.session.scalar(sa.select(Agency.id).where(Agency.code == "AG-TRS"))
        request_ = db.session.scalar(sa.select(TenantRequest).where(TenantRequest.household_id == household.id))
        if request_ is not None:
            request_.agency_id = household.agency_id
        db.session.commit()
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == household.id))
        return {"id": household.id, "client": household.client_number, "account": account.id,
                "user": account.user_id, "request": request_.id if request_ else None,
                "lease": household.leases[0].number}


def test_another_agency_s_household_is_a_404_on_every_screen(app, client_for, demo, elsewhere):
    agent = client_for(AGENT)
    mine = demo["locataire"]
    assert agent.get(f"/agence/foyers/{mine}").status_code == 200
    assert agent.get(f"/agence/foyers/{elsewhere['id']}").status_code == 404
    assert agent.get(f"/staffhouseholdview/edit/{elsewhere['id']}").status_code == 404
    households = agent.get("/staffhouseholdview/list/").get_data(as_text=True)
    assert elsewhere["client"] not in households
    with app.app_context():
        assert db.session.get(Household, mine).client_number in households
    export = agent.get("/staffhouseholdview/export/").get_data(as_text=True)
    assert elsewhere["client"] not in export
    assert agent.get(f"/stafftenantaccountview/show/{elsewhere['account']}").status_code == 404
    assert elsewhere["request"] is not None  # the demo gives this household a request
    assert agent.get(f"/agence/demandes/{elsewhere['request']}").status_code == 404
    search = agent.get(f"/agence/recherche/?q={elsewhere['client']}")
    assert search.status_code == 200 and "Aucun foyer ne correspond" in search.get_data(as_text=True)


def test_actions_and_forms_on_another_agency_s_household_change_nothing(app, client_for, demo, elsewhere):
    agent = client_for(AGENT)
    token = csrf_token(agent, "/stafftenantaccountview/list/")
    response = agent.post("/stafftenantaccountview/action_post", data={
        "csrf_token": token, "action": "disable", "rowid": [str(elsewhere["account"])]})
    assert response.status_code == 404
    with app.app_context():
        assert db.session.get(User, elsewhere["user"]).active
        entries = db.session.scalar(sa.select(sa.func.count(LedgerEntry.id)))
    form = {"csrf_token": csrf_token(agent, "/staffledgerentryview/add"), "household": elsewhere["client"],
            "lease": elsewhere["lease"], "kind": "CHEQUE", "direction": "CREDIT", "amount": "10,00",
            "label": "Chèque", "entry_date": "2026-11-02", "period": "2026-11"}
    page = agent.post("/staffledgerentryview/add", data=form).get_data(as_text=True)
    assert "Aucun foyer ne porte ce numéro client." in page  # unknown to this agency, said next to the field
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) == entries


def test_landlord_wide_operations_are_refused_to_an_agency(client_for, demo):
    agent = client_for(AGENT)
    for url in ("/agence/prelevements/fichier", "/agence/prelevements/retours", "/agence/export-comptable/",
                "/staffdirectdebitbatchview/list/", "/staffbankfileimportview/list/", "/staffjobrunview/list/"):
        assert agent.get(url).status_code == 403, url
    headquarters = client_for("gestionnaire@example.org")
    for url in ("/agence/prelevements/fichier", "/agence/export-comptable/", "/staffjobrunview/list/"):
        assert headquarters.get(url).status_code == 200, url


def test_landlord_wide_staff_see_every_agency(client_for, demo, elsewhere):
    headquarters = client_for("gestionnaire@example.org")
    assert headquarters.get(f"/agence/foyers/{elsewhere['id']}").status_code == 200
    assert elsewhere["client"] in headquarters.get("/staffhouseholdview/list/").get_data(as_text=True)


def test_the_staff_home_counts_the_agency_s_queues_only(client_for, demo, elsewhere):
    agent_home = client_for(AGENT).get("/agence/").get_data(as_text=True)
    assert "Agence d&#39;Orléans" in agent_home or "Agence d'Orléans" in agent_home
    assert "Agence de Tours" not in agent_home
    assert "Agence de Tours" in client_for("gestionnaire@example.org").get("/agence/").get_data(as_text=True)


def test_a_staff_member_attached_to_no_agency_sees_no_household(app, client_for, demo):
    from app import roles
    from tests.conftest import PASSWORD

    with app.app_context():
        sm = app.appbuilder.sm
        sm.add_user("nouvel.agent@example.org", "Nouvel", "Agent", "nouvel.agent@example.org",
                    [sm.find_role(roles.STAFF)], password=PASSWORD)
    newcomer = client_for("nouvel.agent@example.org")
    assert newcomer.get(f"/agence/foyers/{demo['locataire']}").status_code == 404
    with app.app_context():
        number = db.session.get(Household, demo["locataire"]).client_number
    assert number not in newcomer.get("/staffhouseholdview/list/").get_data(as_text=True)


def test_another_agency_s_request_steps_and_internal_notes_are_not_listed(app, client_for, elsewhere):
    """The steps of a request (internal notes included) have no household column of their own: they are scoped
    through their request."""
    from app.models import AuthorSide, EventKind, RequestEvent

    with app.app_context():
        db.session.add(RequestEvent(request_id=elsewhere["request"], kind=EventKind.INTERNAL_NOTE,
                                    author_side=AuthorSide.STAFF, body="Note interne de Tours, confidentielle"))
        db.session.commit()
        event_id = db.session.scalar(sa.select(RequestEvent.id).where(
            RequestEvent.body == "Note interne de Tours, confidentielle"))
    agent = client_for(AGENT)
    assert "confidentielle" not in agent.get("/staffrequesteventview/list/?psize_StaffRequestEventView=100") \
        .get_data(as_text=True)
    assert agent.get(f"/staffrequesteventview/show/{event_id}").status_code == 404
    headquarters = client_for("gestionnaire@example.org")
    assert headquarters.get(f"/staffrequesteventview/show/{event_id}").status_code == 200
