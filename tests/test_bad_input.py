"""Input nobody expected never ends in a 500 (issue 11, findings 5, 6 and 8, and siblings found on every route).

Junk in URL parts, paging and ordering arguments and search filters, on every route, for staff and tenants, and
plausible search values on every staff list; a tenant posting to a staff list's actions; an invalid status or
assignee on the request desk; five registrations of one household at the same moment; amounts that are not finite
numbers of the money columns' size, in every money form field and in the database itself; and registration
answering the same whether or not the household already has an account, or the address already is one's identifier
(the helpful message goes by mail instead). Every refusal is a 4xx in the portal's layout.
"""

from __future__ import annotations

import math
import re
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_appbuilder.security.sqla.models import User

from app.extensions import db
from app.models import (
    MONEY, Household, Lease, LedgerEntry, Model, OutgoingMail, PaymentTransaction, TenantAccount, TenantRequest, Throttle,
)
from tests.conftest import csrf_token
from tests.mailbox import text_of
from tests.test_accounts import NEW_PASSWORD, body, newcomer, register, without_noise  # noqa: F401 (fixture)
from tests.test_route_matrix import ROLES, build_url, browsable_rules, job_run  # noqa: F401 (fixture)

LAYOUT = 'id="main-content"'  # every page of the portal's layout has it
HUGE_IDS = ["99999999999999999999999", str(2 ** 63), str(2 ** 64)]
# Past PostgreSQL's 32-bit `integer` ids, yet a valid 64-bit key: a 404, not "integer out of range".
LARGE_IDS = [str(2 ** 31), str(2 ** 63 - 1)]
JUNK_PARTS = HUGE_IDS + LARGE_IDS + ["abc", "-1", "1e3"]
ARGUMENT_RE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _is_layout_error(response) -> bool:
    return response.mimetype != "text/html" or LAYOUT in response.get_data(as_text=True)


def _fetch(client, method, url, **kwargs):
    """The response, or the exception the app let escape (the test app propagates them instead of a 500)."""
    try:
        return getattr(client, method)(url, **kwargs)
    except Exception as error:  # reported as a failure
        return error


def _check(response, url, failures, want_layout=True):
    if isinstance(response, Exception):
        failures.append(f"{url}: 500 ({type(response).__name__}: {str(response)[:120]})")
    elif response.status_code >= 500:
        failures.append(f"{url}: {response.status_code}")
    elif want_layout and response.status_code in (400, 403, 404) and not _is_layout_error(response):
        failures.append(f"{url}: {response.status_code} outside the portal's layout")


# --- finding 5: 500s from input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/documents/99999999999999999999999", f"/documents/{2 ** 63}",
                                 "/staffhouseholdview/show/99999999999999999999999",
                                 "/staffhouseholdview/show/abc", "/agence/demandes/99999999999999999999999"])
def test_ids_beyond_64_bits_are_a_404_in_the_layout(client_for, url):
    role = "locataire@example.org" if url.startswith("/documents") else "gestionnaire@example.org"
    response = client_for(role).get(url)
    assert response.status_code == 404
    assert LAYOUT in response.get_data(as_text=True)


@pytest.mark.parametrize("args", [
    "page_StaffHouseholdView=abc", "page_StaffHouseholdView=99999999999999999999",
    "psize_StaffHouseholdView=abc", "psize_StaffHouseholdView=99999999999999999999",
    "page_StaffHouseholdView=-1", "psize_StaffHouseholdView=-1",
    "_oc_StaffHouseholdView=nosuchcolumn&_od_StaffHouseholdView=asc",
    "_oc_StaffHouseholdView=signatory_last_name;drop&_od_StaffHouseholdView=desc",
])
def test_junk_paging_and_order_on_staff_lists_is_a_400(client_for, args):
    response = client_for("gestionnaire@example.org").get(f"/staffhouseholdview/list/?{args}")
    assert response.status_code == 400, response.status_code
    assert LAYOUT in response.get_data(as_text=True)


def test_page_size_is_bounded_and_real_paging_still_works(app, client_for):
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))) > 100
    client = client_for("gestionnaire@example.org")
    page = client.get("/staffledgerentryview/list/?psize_StaffLedgerEntryView=100000").get_data(as_text=True)
    assert page.count("/staffledgerentryview/show/") == 100
    response = client.get("/staffhouseholdview/list/?psize_StaffHouseholdView=2&page_StaffHouseholdView=1"
                          "&_oc_StaffHouseholdView=client_number&_od_StaffHouseholdView=desc")
    assert response.status_code == 200
    assert response.get_data(as_text=True).count("/staffhouseholdview/show/") == 2


def _request_id(app, household_id):
    with app.app_context():
        return db.session.scalar(sa.select(TenantRequest.id).where(TenantRequest.household_id == household_id))


@pytest.mark.parametrize("status", ["NOT_A_STATUS", "", "closed"])
def test_invalid_status_on_the_request_desk_is_a_400_and_changes_nothing(app, client_for, demo, status):
    request_id = _request_id(app, demo["locataire"])
    with app.app_context():
        before = db.session.get(TenantRequest, request_id).status
    client = client_for("gestionnaire@example.org")
    url = f"/agence/demandes/{request_id}"
    response = client.post(f"{url}/statut", data={"csrf_token": csrf_token(client, url), "status-status": status,
                                                  "status-comment": "x"})
    assert response.status_code == 400
    assert LAYOUT in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(TenantRequest, request_id).status is before


@pytest.mark.parametrize("user", [" ", "abc", "99999999999999999999999"])
def test_an_invalid_assignee_on_the_request_desk_is_a_400(app, client_for, demo, user):
    """Found by tests/test_fuzz.py: `Optional()` cleared the invalid-choice error of " ", then int(" ") failed."""
    request_id = _request_id(app, demo["locataire"])
    with app.app_context():
        before = db.session.get(TenantRequest, request_id).assigned_to_id
    client = client_for("gestionnaire@example.org")
    url = f"/agence/demandes/{request_id}"
    response = _fetch(client, "post", f"{url}/attribution", data={"csrf_token": csrf_token(client, url),
                                                                   "assign-user": user})
    assert getattr(response, "status_code", response) == 400
    with app.app_context():
        assert db.session.get(TenantRequest, request_id).assigned_to_id == before
    assert client.post(f"{url}/attribution", data={"csrf_token": csrf_token(client, url),
                                                   "assign-user": ""}).status_code == 302  # nobody


@pytest.mark.parametrize("action", ["disable", "resend_activation", "no_such_action", None])
def test_a_tenant_posting_to_a_staff_list_action_is_refused_and_changes_nothing(app, client_for, demo, action):
    with app.app_context():
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == demo["retard"]))
        account_id, user_id = account.id, account.user_id
        mails = db.session.scalar(sa.select(sa.func.count(OutgoingMail.id)))
    client = client_for("locataire@example.org")
    data = {"csrf_token": csrf_token(client, "/paiement/"), "rowid": [str(account_id)]}
    if action:
        data["action"] = action
    for url in ("/stafftenantaccountview/action_post", "/staffhouseholdview/action_post",
                f"/stafftenantaccountview/action/{action or 'disable'}/{account_id}"):
        response = client.post(url, data=data)
        assert response.status_code in (403, 404), (url, response.status_code)
        assert LAYOUT in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user_id).active
        assert db.session.scalar(sa.select(sa.func.count(OutgoingMail.id))) == mails


@pytest.mark.parametrize("rowid", ["abc", "99999999999999999999999", "0"])
def test_staff_actions_on_rows_that_do_not_exist_are_a_404(client_for, rowid):
    client = client_for("gestionnaire@example.org")
    token = csrf_token(client, "/stafftenantaccountview/list/")
    response = client.post("/stafftenantaccountview/action_post", data={"csrf_token": token, "action": "disable",
                                                                          "rowid": [rowid]})
    assert response.status_code == 404
    response = client.post("/stafftenantaccountview/action_post", data={"csrf_token": token, "action": "nothing",
                                                                          "rowid": ["1"]})
    assert response.status_code == 404


@pytest.mark.parametrize("view", ["users", "roles", "groups", "permissions", "viewmenus", "permissionviews"])
def test_unknown_actions_and_rows_on_the_security_screens_are_a_404(client_for, view):
    """Flask-AppBuilder's own screens for the administrator: an unknown action was a 500 there."""
    client = client_for("admin@example.org")
    token = csrf_token(client, "/users/list/")
    for action, rowid in (("no_such_action", "1"), ("resetpasswords", "99999999999999999999999")):
        response = client.post(f"/{view}/action_post", data={"csrf_token": token, "action": action, "rowid": [rowid]})
        assert response.status_code == 404, (view, action, response.status_code)
        assert LAYOUT in response.get_data(as_text=True)


def test_staff_list_actions_still_work(app, client_for, demo):
    with app.app_context():
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == demo["retard"]))
        account_id, user_id = account.id, account.user_id
    client = client_for("gestionnaire@example.org")
    token = csrf_token(client, "/stafftenantaccountview/list/")
    response = client.post("/stafftenantaccountview/action_post", data={"csrf_token": token, "action": "disable",
                                                                          "rowid": [str(account_id)]})
    assert response.status_code == 302
    with app.app_context():
        assert not db.session.get(User, user_id).active


def _post_at_once(app, url: str, forms: list[dict]) -> list:
    """Post each form from its own browser at the same moment; the responses (or what escaped)."""
    clients = [app.test_client() for _ in forms]
    forms = [dict(form, csrf_token=csrf_token(client, url)) for client, form in zip(clients, forms)]
    barrier, answers = threading.Barrier(len(forms)), []

    def post(client, form):
        barrier.wait()
        answers.append(_fetch(client, "post", url, data=form))

    threads = [threading.Thread(target=post, args=pair) for pair in zip(clients, forms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def _registration(newcomer, email, surname=None):
    return {"reference": newcomer["client_number"], "surname": surname or newcomer["surname"], "email": email,
            "password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "terms": "y"}


@pytest.mark.parametrize("same_email, pending", [(True, False), (False, False), (False, True)],
                         ids=["same-email", "five-emails", "five-replacing-a-pending-one"])
def test_five_registrations_of_one_household_at_once_create_one_account(app, newcomer, same_email, pending):
    """A double submit, and five at once. With `pending`, each replaces the registration not yet activated: on
    SQLite the replaced row's id comes back for the next insert, and a delete by id alone removed a newer one."""
    if pending:
        assert register(app.test_client(), newcomer["client_number"], newcomer["surname"],
                        email="premier@example.net").status_code == 200
    emails = ["nouveau@example.net"] * 5 if same_email else [f"n{i}@example.net" for i in range(5)]
    answers = _post_at_once(app, "/compte/creer", [_registration(newcomer, email) for email in emails])
    assert [getattr(answer, "status_code", answer) for answer in answers] == [200] * 5
    for email in set(emails):
        assert sum(f"Nous avons envoyé un e-mail à {email}." in body(answer) for answer in answers) == \
            emails.count(email)
    with app.app_context():
        accounts = db.session.scalars(sa.select(TenantAccount).where(
            TenantAccount.household_id == newcomer["id"])).all()
        assert len(accounts) == 1
        users = db.session.scalars(sa.select(User).where(User.email.in_([*emails, "premier@example.net"]))).all()
        assert [user.id for user in users] == [accounts[0].user_id]  # no user left without its account


def test_five_failed_registrations_at_once_are_each_counted_and_answered(app, newcomer):
    """The per-number throttle's counter is created by the first failure: five at once race to create it."""
    answers = _post_at_once(app, "/compte/creer", [_registration(newcomer, f"n{i}@example.net", surname="Personne")
                                      for i in range(5)])
    assert [getattr(answer, "status_code", answer) for answer in answers] == [200] * 5
    assert all("Ces informations ne correspondent à aucun contrat." in body(answer) for answer in answers)
    with app.app_context():
        assert db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == newcomer["id"])) is None


def test_four_failed_logins_at_once_for_a_new_address_are_each_counted_and_answered(app, demo):
    """The per-account throttle's counter is created by the first failure: failures at once raced to create it
    (a unique violation, a 500 for all but one). The race is won by chance: ten new addresses give it ten tries."""
    for round_ in range(10):
        email = f"inconnu-{round_}@example.net"
        answers = _post_at_once(app, "/login/", [{"username": email, "password": f"faux-{i}"} for i in range(4)])
        assert [getattr(answer, "status_code", answer) for answer in answers] == [200] * 4, email
        assert all("Adresse e-mail ou mot de passe incorrect." in body(answer) for answer in answers)
        with app.app_context():
            assert db.session.scalar(sa.select(Throttle.failures).where(Throttle.key == f"login:{email}")) == 4


@pytest.mark.parametrize("role", ["staff", "tenant", "admin"])
def test_junk_in_every_url_part_is_never_a_500(app, client_for, demo, role):
    """Every rule of the URL map, each of its parts replaced by huge ids, `abc` and the like."""
    client = client_for(ROLES[role])
    token = csrf_token(client, "/paiement/" if role == "tenant" else "/stafftenantaccountview/list/")
    failures, checked = [], 0
    for rule in app.url_map.iter_rules():
        if not rule.arguments or rule.endpoint in ("static", "appbuilder.static"):
            continue
        for junk in JUNK_PARTS:
            url = ARGUMENT_RE.sub(junk, rule.rule)
            if "GET" in rule.methods:
                response = _fetch(client, "get", url)
            else:
                response = _fetch(client, "post", url, data={"csrf_token": token})
            checked += 1
            _check(response, f"{sorted(rule.methods - {'HEAD', 'OPTIONS'})} {url}", failures)
    assert checked > 100
    assert not failures, "\n".join(failures)


JUNK_QUERIES = [
    "page_{view}=abc", "page_{view}=99999999999999999999", "page_{view}=-3", "psize_{view}=abc",
    "psize_{view}=99999999999999999999", "psize_{view}=-1", "_oc_{view}=nosuchcolumn&_od_{view}=asc",
    "_oc_{view}=id&_od_{view}=sideways",
]


@pytest.mark.parametrize("role", ["staff", "tenant", "admin"])
def test_junk_paging_and_order_args_are_never_a_500(app, client_for, job_run, role):
    """Every page reachable by GET, with junk paging and ordering arguments for every model view."""
    client = client_for(ROLES[role])
    views = [view.__class__.__name__ for view in app.appbuilder.baseviews if hasattr(view, "datamodel")]
    failures = []
    for rule in browsable_rules(app):
        url = build_url(app, rule)
        if url is None:
            continue
        for query in JUNK_QUERIES:
            args = "&".join(query.format(view=view) for view in views)
            _check(_fetch(client, "get", f"{url}{'&' if '?' in url else '?'}{args}"), f"{url} {query}", failures)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ["staff", "admin"])
@pytest.mark.parametrize("junk", ["abc", "99999999999999999999999", "Infinity", "NaN", "1e400", "2026-13-45"])
def test_junk_in_search_filters_is_never_a_500(app, client_for, demo, junk, role):
    """Staff lists for staff; for the administrator, Flask-AppBuilder's own security lists too."""
    client = client_for(ROLES[role])
    failures = []
    for view in app.appbuilder.baseviews:
        name = view.__class__.__name__
        if not getattr(view, "search_columns", None) or (role == "staff" and not name.startswith("Staff")):
            continue
        filters = view._filters.get_search_filters()
        args = [f"_flt_{index}_{column}={junk}" for column, column_filters in filters.items()
                for index in range(len(column_filters))]
        url = f"{view.route_base}/list/?" + "&".join(args)
        _check(_fetch(client, "get", url), url, failures)
    assert not failures, "\n".join(failures)


def _plausible_search_value(view, column: str) -> str:
    datamodel = view.datamodel
    if column == "household":
        return "00000001"  # typed by client number
    for check, value in (("is_relation", "1"), ("is_numeric", "12,50"), ("is_integer", "7"), ("is_boolean", "y"),
                         ("is_date", "2026-01-01"), ("is_datetime", "2026-01-01 10:00:00")):
        if getattr(datamodel, check)(column):
            return value
    enum_class = getattr(datamodel.list_columns[column].type, "enum_class", None)
    return next(iter(enum_class)).name if enum_class else "a"


def test_plausible_search_values_work_on_every_staff_list(app, client_for, demo):
    """Every search filter of every staff list, with a value such as the search form sends (an amount as `12,50`)."""
    client = client_for("gestionnaire@example.org")
    failures = []
    for view in app.appbuilder.baseviews:
        if not view.__class__.__name__.startswith("Staff") or not getattr(view, "search_columns", None):
            continue
        for column, column_filters in view._filters.get_search_filters().items():
            for index in range(len(column_filters)):
                url = f"{view.route_base}/list/?_flt_{index}_{column}={_plausible_search_value(view, column)}"
                response = _fetch(client, "get", url)
                if getattr(response, "status_code", 500) != 200:
                    failures.append(f"{url}: {getattr(response, 'status_code', response)}")
    assert not failures, "\n".join(failures)


def test_staff_search_by_amount_and_by_date_and_time_finds_the_rows(app, client_for, job_run):
    """Two searches that were 500s with valid values: an amount on PostgreSQL, a date and time on both."""
    view = next(v for v in app.appbuilder.baseviews if v.__class__.__name__ == "StaffPaymentView")
    filters = view._filters.get_search_filters()
    equal = [type(flt).__name__ for flt in filters["amount"]].index("ReadFilterEqual")
    after = [type(flt).__name__ for flt in filters["created_at"]].index("ReadFilterGreater")
    client = client_for("gestionnaire@example.org")

    def found(query):
        response = client.get(f"/staffpaymentview/list/?{query}")
        assert response.status_code == 200
        return "EL-MATRIX-000001" in response.get_data(as_text=True)

    assert found(f"_flt_{equal}_amount=10,00") and found(f"_flt_{equal}_amount=10.00")
    assert not found(f"_flt_{equal}_amount=10,01")
    assert found(f"_flt_{after}_created_at=2000-01-01 00:00:00")
    assert not found(f"_flt_{after}_created_at=2999-01-01 00:00:00")


def test_a_form_without_its_csrf_token_is_a_400_in_the_layout(client_for):
    response = client_for("gestionnaire@example.org").post("/staffleaseview/add", data={"number": "999001"})
    assert response.status_code == 400
    assert LAYOUT in response.get_data(as_text=True)


# --- finding 6: amounts that are not numbers ------------------------------------------------------------------------

NOT_AMOUNTS = ["Infinity", "-Infinity", "inf", "NaN", "sNaN", "1e13", "10000000000", "-10000000000", "12.345",
               "1_000", "1e2", "0x10", "abc", "1" * 40, "1.234,56"]


def _ledger_form(client, app, demo, amount):
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        number, lease = household.client_number, household.leases[0].number
    return {"csrf_token": csrf_token(client, "/staffledgerentryview/add"), "household": number, "lease": lease,
            "kind": "CHEQUE", "direction": "CREDIT", "amount": amount, "label": "Chèque",
            "entry_date": "2026-11-02", "period": "2026-11"}


def _entries(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(LedgerEntry.id)))


def _field_error(page: str, field: str) -> str:
    """The message Flask-AppBuilder's form shows next to `field` (empty when there is none)."""
    cell = re.search(r'name="' + field + r'".*?</td>', page, re.DOTALL)
    error = re.search(r'class="alert alert-danger">\s*(.*?)\s*</div>', cell.group(0), re.DOTALL) if cell else None
    return error.group(1) if error else ""


@pytest.mark.parametrize("amount", NOT_AMOUNTS)
def test_a_staff_ledger_entry_refuses_what_is_not_an_amount_next_to_the_field(app, client_for, demo, amount):
    client = client_for("gestionnaire@example.org")
    before = _entries(app)
    response = client.post("/staffledgerentryview/add", data=_ledger_form(client, app, demo, amount))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    error = _field_error(page, "amount")
    assert error.startswith(("Saisissez un montant en euros", "Le montant doit être compris entre")), error
    assert _entries(app) == before
    assert client.get(f"/agence/foyers/{demo['locataire']}").status_code == 200


@pytest.mark.parametrize("amount, stored", [("50", "50.00"), ("1234,5", "1234.50"), ("9 999 999 999,99",
                                                                                         "9999999999.99")])
def test_a_staff_ledger_entry_takes_french_amounts(app, client_for, demo, amount, stored):
    client = client_for("gestionnaire@example.org")
    response = client.post("/staffledgerentryview/add", data=_ledger_form(client, app, demo, amount))
    assert response.status_code == 302
    with app.app_context():
        entry = db.session.scalar(sa.select(LedgerEntry).order_by(LedgerEntry.id.desc()))
        assert entry.amount == Decimal(stored)
    assert client.get(f"/agence/foyers/{demo['locataire']}").status_code == 200


@pytest.mark.parametrize("field", ["rent", "charges", "housing_benefit", "deposit"])
def test_every_lease_amount_refuses_infinity_and_too_large(app, client_for, demo, field):
    with app.app_context():
        lease = db.session.get(Lease, demo["locataire_lease"])
        before = (lease.rent, lease.charges, lease.housing_benefit, lease.deposit)
        values = {"number": lease.number, "household": lease.household.client_number,
                  "unit": lease.unit.reference, "start_date": f"{lease.start_date:%Y-%m-%d}",
                  "rent": str(lease.rent), "charges": str(lease.charges),
                  "housing_benefit": str(lease.housing_benefit), "deposit": str(lease.deposit)}
    client = client_for("gestionnaire@example.org")
    for amount in ("Infinity", "NaN", "1e13", "12345678901"):
        url = f"/staffleaseview/edit/{demo['locataire_lease']}"
        response = client.post(url, data=dict(values, csrf_token=csrf_token(client, url), **{field: amount}))
        assert response.status_code == 200 and _field_error(response.get_data(as_text=True), field), amount
    with app.app_context():
        lease = db.session.get(Lease, demo["locataire_lease"])
        assert (lease.rent, lease.charges, lease.housing_benefit, lease.deposit) == before


def test_every_decimal_field_of_the_staff_screens_is_checked(app):
    """Money columns get MoneyField, other decimals (a surface) NumberField: never Flask-AppBuilder's DecimalField."""
    from app.staff.fields import MoneyField, NumberField

    checked = {MoneyField: 0, NumberField: 0}
    for view in app.appbuilder.baseviews:
        for form_name in ("add_form", "edit_form"):
            form_class = getattr(view, form_name, None)
            if form_class is None or not view.__class__.__name__.startswith("Staff"):
                continue
            for name in getattr(view, form_name.replace("form", "columns")):
                column = view.datamodel.list_columns.get(name)
                if column is not None and isinstance(column.type, sa.Numeric):
                    money = (column.type.precision, column.type.scale) == (12, 2)
                    assert getattr(form_class, name).field_class is (MoneyField if money else NumberField), name
                    checked[MoneyField if money else NumberField] += 1
    # at least lease (4 amounts, add and edit) and ledger entry (read-only screens have forms nobody may post);
    # the unit's surface (add and edit)
    assert checked[MoneyField] >= 9 and checked[NumberField] == 2


def test_a_unit_surface_and_floor_are_numbers_of_the_column_size(app, client_for, demo):
    """Not money, the same flaw: Flask-AppBuilder's DecimalField took `Infinity` for a surface (and SQLite kept it),
    its IntegerField a floor past PostgreSQL's integer (a database error instead of a message)."""
    from app.models import Unit

    with app.app_context():
        unit = db.session.scalar(sa.select(Unit).order_by(Unit.id))
        unit_id, before = unit.id, unit.surface_m2
        values = {"reference": unit.reference, "kind": unit.kind.name, "residence": str(unit.residence_id),
                  "street": unit.street, "postcode": unit.postcode, "city": unit.city, "typology": unit.typology or "",
                  "floor": "" if unit.floor is None else str(unit.floor)}
    client = client_for("gestionnaire@example.org")
    url = f"/staffunitview/edit/{unit_id}"
    for surface in ("Infinity", "NaN", "1e3", "100000", "62,555", "1" * 40):
        response = client.post(url, data=dict(values, csrf_token=csrf_token(client, url), surface_m2=surface))
        assert response.status_code == 200
        error = _field_error(response.get_data(as_text=True), "surface_m2")
        assert error.startswith("Saisissez un nombre d'au plus 5 chiffres avant la virgule et 2 après"), error
    response = client.post(url, data=dict(values, csrf_token=csrf_token(client, url), floor=str(2 ** 31)))
    assert _field_error(response.get_data(as_text=True), "floor").startswith("Saisissez un nombre entier entre")
    with app.app_context():
        assert db.session.get(Unit, unit_id).surface_m2 == before
    response = client.post(url, data=dict(values, csrf_token=csrf_token(client, url), surface_m2="62,5"))
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Unit, unit_id).surface_m2 == Decimal("62.50")


@pytest.mark.parametrize("amount", ["Infinity", "NaN", "sNaN", "1e13", "-0", "-Infinity"])
def test_the_tenant_pay_form_refuses_what_is_not_an_amount(app, client_for, demo, amount):
    client = client_for("retard@example.org")
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.count(PaymentTransaction.id)))
    response = client.post("/paiement/payer", data={"csrf_token": csrf_token(client, "/paiement/"),
                                                    "amount": amount, "lease": ""})
    assert response.status_code == 400
    assert re.search(r'id="amount-error">[^<]*(Saisissez un montant|Le montant m)', response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(PaymentTransaction.id))) == before


@pytest.mark.parametrize("amount", ["1E308", "1_0", "1e1"])
def test_the_tenant_pay_form_refuses_exponents_and_underscores(app, client_for, demo, amount):
    """Decimal() alone took 1E308 (then quantize() failed: a 500), 1_0 and 1e1 (10 €): parse_money refuses them."""
    client = client_for("retard@example.org")
    response = _fetch(client, "post", "/paiement/payer", data={"csrf_token": csrf_token(client, "/paiement/"),
                                                               "amount": amount, "lease": ""})
    assert getattr(response, "status_code", None) == 400
    assert re.search(r'id="amount-error">[^<]*Saisissez un montant', response.get_data(as_text=True))


def money_columns():
    return [(table.name, column.name) for table in Model.metadata.sorted_tables for column in table.columns
            if isinstance(column.type, sa.Numeric) and (column.type.precision, column.type.scale) == (12, 2)]


def test_every_money_column_has_a_range_check():
    assert len(money_columns()) == 16, money_columns()
    for table_name, column_name in money_columns():
        table = Model.metadata.tables[table_name]
        names = {constraint.name for constraint in table.constraints if isinstance(constraint, sa.CheckConstraint)}
        assert f"ck_{table_name}_{column_name}_range" in names, (table_name, column_name)
    assert MONEY.precision == 12 and MONEY.scale == 2


@pytest.mark.parametrize("value", [Decimal("Infinity"), Decimal("-Infinity"), Decimal("NaN"), Decimal("1E+13"),
                                   Decimal("-10000000000.00"), float("inf"), float("nan")],
                         ids=["Infinity", "-Infinity", "NaN", "1e13", "-1e10", "float-inf", "float-nan"])
def test_the_database_refuses_amounts_that_are_not_finite_or_too_large(app, job_run, value):
    """Past every form, in every money column with a row: SQLite keeps `inf` as a REAL and 1e13 as it comes,
    PostgreSQL's numeric(12, 2) takes NaN and refuses infinity and overflow with an error of its own. Each is
    refused; the one thing that may pass is NaN into a nullable column, which SQLite stores as NULL."""
    failures, checked = [], 0
    with app.app_context():
        for table_name, column_name in money_columns():
            table = Model.metadata.tables[table_name]
            column = table.c[column_name]
            row_id = db.session.scalar(sa.select(sa.func.min(table.c.id)))
            if row_id is None:
                continue
            db.session.remove()
            checked += 1
            try:
                with db.engine.begin() as connection:
                    connection.execute(sa.update(table).where(table.c.id == row_id).values({column_name: value}))
            except (sa.exc.IntegrityError, sa.exc.DataError):
                continue
            stored = db.session.scalar(sa.select(column).where(table.c.id == row_id))
            if not (column.nullable and _is_nan(value) and stored is None):
                failures.append(f"{table_name}.{column_name} took {value!r} (stored {stored!r})")
    assert checked == len(money_columns()), checked
    assert not failures, "\n".join(failures)


def _is_nan(value) -> bool:
    return value.is_nan() if isinstance(value, Decimal) else math.isnan(value)


def test_the_range_checks_are_in_the_database(app):
    with app.app_context():
        inspector = sa.inspect(db.engine)
        for table_name, column_name in money_columns():
            names = {check["name"] for check in inspector.get_check_constraints(table_name)}
            assert f"ck_{table_name}_{column_name}_range" in names, (table_name, column_name)


# --- finding 8: the registration oracle -----------------------------------------------------------------------------

def _without_household(response) -> str:
    """The page without what differs from one household to another (the typed reference and surname)."""
    return re.sub(r'name="(reference|surname)"[^>]*', "", without_noise(body(response)))


def test_registration_answers_the_same_whether_or_not_the_household_has_an_account(app, demo, newcomer, mailbox):
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        number, surname = household.client_number, household.signatory_last_name
    taken = register(app.test_client(), number, surname, email="intrus@example.net")
    free = register(app.test_client(), newcomer["client_number"], newcomer["surname"], email="intrus@example.net")
    assert taken.status_code == free.status_code == 200
    assert _without_household(taken) == _without_household(free)
    assert "Un espace locataire existe déjà" not in body(taken)
    mailbox.deliver()
    holder = text_of(mailbox.last_to("locataire@example.org"))
    assert "Un espace locataire existe déjà pour votre foyer" in holder
    assert "identifiant de connexion est : locataire@example.org" in holder and "/compte/mot-de-passe-oublie" in holder
    assert [m["Subject"] for m in mailbox.to("intrus@example.net")] == ["Activez votre espace locataire"]
    with app.app_context():
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == demo["locataire"]))
        assert account.user.email == "locataire@example.org" and account.user.active


def test_registration_of_a_household_with_an_account_still_checks_the_form(app, demo, newcomer, mailbox):
    """A weak password gets the same message whether the household has an account or not, and no mail."""
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        number, surname = household.client_number, household.signatory_last_name
    taken = register(app.test_client(), number, surname, password="court1!")
    free = register(app.test_client(), newcomer["client_number"], newcomer["surname"], password="court1!")
    assert taken.status_code == free.status_code == 200
    assert "au moins 8 caractères" in body(taken)
    assert _without_household(taken) == _without_household(free)
    mailbox.deliver()
    assert mailbox.messages == []


def test_registration_with_an_address_in_use_answers_the_same_and_tells_its_owner(app, newcomer, mailbox):
    """The same oracle by address: "already used by another space" told anyone holding one client number which
    addresses have an account. The page now answers as for a new address; the address's owner gets the message."""
    in_use = register(app.test_client(), newcomer["client_number"], newcomer["surname"], email="retard@example.org")
    new = register(app.test_client(), newcomer["client_number"], newcomer["surname"], email="nouveau@example.net")
    assert in_use.status_code == new.status_code == 200
    assert without_noise(body(in_use)).replace("retard@example.org", "X") == \
        without_noise(body(new)).replace("nouveau@example.net", "X")
    mailbox.deliver()
    owner = mailbox.last_to("retard@example.org")
    assert owner["Subject"] == "Votre adresse e-mail est déjà celle d'un espace locataire"
    assert "aucun autre espace n'a été créé avec elle" in text_of(owner)
    assert [m["Subject"] for m in mailbox.to("nouveau@example.net")] == ["Activez votre espace locataire"]
    with app.app_context():
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == newcomer["id"]))
        assert account.user.email == "nouveau@example.net"


def test_a_very_long_search_url_does_not_overflow_the_session_cookie(client_for, demo):
    """Flask-AppBuilder remembers visited pages in the session cookie: five long search URLs made it larger than
    the 4 KB a browser keeps, which signs the person out. (Random text: the cookie is compressed.)"""
    import secrets

    client = client_for("gestionnaire@example.org")
    for _ in range(5):
        response = client.get(f"/staffhouseholdview/list/?_flt_0_signatory_last_name={secrets.token_hex(900)}")
        assert response.status_code in (200, 400)
    cookie = client.get_cookie("session") or next(c for c in client._cookies.values() if "session" in c.key)
    assert len(cookie.value) < 4000
    assert client.get("/staffhouseholdview/list/").status_code == 200
