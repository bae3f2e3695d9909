"""The household scope: a tenant sees its own rows; another household's object is a 404, like a missing one."""

import pytest
import sqlalchemy as sa
from flask_appbuilder.models.sqla.interface import SQLAInterface
from werkzeug.exceptions import NotFound

from app.extensions import db
from app.models import Household, Lease, LedgerEntry, TenantAccount
from app.security import (
    HouseholdScopedModelView, current_household, get_for_household, household_condition, scope_to_household,
)
from tests.conftest import login, make_app


def test_get_for_household_returns_own_object_and_404_for_others(app, demo):
    with app.app_context():
        mine = db.session.get(Household, demo["locataire"])
        own = get_for_household(Lease, demo["locataire_lease"], mine)
        assert own.household_id == mine.id
        for foreign in (demo["retard_lease"], 10 ** 9, "abc", None):
            with pytest.raises(NotFound):
                get_for_household(Lease, foreign, mine)
        with pytest.raises(NotFound):
            get_for_household(Lease, demo["locataire_lease"], None)


def test_scope_filter_for_tenant_staff_and_anonymous(app, demo):
    with app.app_context():
        mine = db.session.get(Household, demo["locataire"])
        query = db.session.query(LedgerEntry)
        rows = scope_to_household(query, LedgerEntry, mine, staff=False).all()
        assert rows and {row.household_id for row in rows} == {mine.id}
        assert scope_to_household(query, LedgerEntry, None, staff=False).count() == 0
        assert household_condition(LedgerEntry, None) is None  # landlord-wide staff: every household
        everyone = query.filter(household_condition(LedgerEntry, frozenset({mine.agency_id})))
        assert {row.household_id for row in everyone} >= {demo["locataire"], demo["retard"]}
        assert query.filter(household_condition(LedgerEntry, frozenset())).count() == 0  # an agency-less staff


def test_current_household_resolves_the_tenant_only(app, demo):
    client = app.test_client()
    login(client, "locataire@example.org")
    with client:
        client.get("/")
        assert current_household().id == demo["locataire"]
    staff = app.test_client()
    login(staff, "gestionnaire@example.org")
    with staff:
        staff.get("/staffhouseholdview/list/")
        assert current_household() is None


class TenantLeaseProbeView(HouseholdScopedModelView):
    """A tenant list over leases, built on the scoped base view, as the tenant pages will be."""

    datamodel = SQLAInterface(Lease)
    list_columns = ["number", "start_date"]
    base_permissions = ["can_list", "can_show"]


@pytest.fixture(scope="module")
def probe_app(tmp_path_factory):
    application = make_app(f"sqlite:///{tmp_path_factory.mktemp('probe') / 'probe.db'}",
                           tmp_path_factory.mktemp("probe-instance"))
    with application.app_context():
        application.appbuilder.add_view_no_menu(TenantLeaseProbeView)
    return application


@pytest.fixture
def probe(probe_app):
    from app.services.demo import seed_demo

    with probe_app.app_context():
        seed_demo(4, echo=lambda *_: None)
        accounts = {a.user.email: a.household_id for a in db.session.scalars(sa.select(TenantAccount))}
        leases = {h: [lease.id for lease in db.session.scalars(sa.select(Lease).where(Lease.household_id == h))]
                  for h in accounts.values()}
    yield accounts, leases
    from tests.conftest import wipe

    wipe(probe_app)


def test_scoped_view_lists_and_shows_only_own_leases(probe_app, probe):
    accounts, leases = probe
    mine, theirs = leases[accounts["locataire@example.org"]], leases[accounts["retard@example.org"]]
    client = probe_app.test_client()
    login(client, "locataire@example.org")
    listing = client.get("/tenantleaseprobeview/list/").get_data(as_text=True)
    for lease_id in mine:
        assert f"/tenantleaseprobeview/show/{lease_id}" in listing
    for lease_id in theirs:
        assert f"/tenantleaseprobeview/show/{lease_id}" not in listing
    assert client.get(f"/tenantleaseprobeview/show/{mine[0]}").status_code == 200
    assert client.get(f"/tenantleaseprobeview/show/{theirs[0]}").status_code == 404


def test_scoped_view_has_no_unfiltered_routes(probe_app):
    endpoints = {rule.endpoint for rule in probe_app.url_map.iter_rules()}
    assert "TenantLeaseProbeView.list" in endpoints
    for method in ("action", "action_post", "download"):
        assert f"TenantLeaseProbeView.{method}" not in endpoints
