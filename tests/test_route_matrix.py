"""Every URL of the app, for anonymous, tenant, staff and admin users, with the status each must get.

A new route that this file does not know about fails `test_every_route_is_classified`: whoever adds a route decides
who may reach it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db

ROLES = {
    "anonymous": None,
    "tenant": "locataire@example.org",
    "staff": "gestionnaire@example.org",
    "admin": "admin@example.org",
}
SECURITY_VIEWS = {"UserDBModelView", "RoleModelView", "PermissionModelView", "ViewMenuModelView",
                  "PermissionViewModelView", "UserGroupModelView", "UserStatsChartView", "ResetPasswordView",
                  "ResetMyPasswordView", "AgencyStaffView"}
STAFF_OWN_ACCOUNT = {"UserDBModelView.userinfo", "UserInfoEditView.this_form_get", "UserInfoEditView.this_form_post"}
# Mutations through GET are refused by Flask-AppBuilder when CSRF is on; they are checked in test_staff.py.
NOT_BROWSED = {"delete", "action", "download", "action_post"}
PUBLIC_GET = {"static", "appbuilder.static", "health.health", "probes.live", "probes.ready", "AccountView.register",
              "AccountView.resend", "AccountView.forgot_identifier", "AccountView.forgot_password",
              "AccountView.terms", "CertificateCheckView.check"}
# Whoever asks, from METRICS_ALLOWED_NETWORKS (the loopback by default: the test client's 127.0.0.1) or with the
# metrics token; from anywhere else a 404 (tests/test_observability.py).
NETWORK_ONLY = {"probes.metrics"}
# Public pages behind an emailed link: a made-up token is a 404 for everyone.
PUBLIC_TOKEN = {"AccountView.activate", "AccountView.reset_password", "AccountView.confirm_email"}
GONE = "gone"
# The bank's protocol: POST only, no session, proven by signature (tests/test_payments.py).
PUBLIC_POST = {"payments.systempay_ipn", "sandbox.payment_page", "sandbox.decision"}
FOLLOW_UP = {"PortalAuthDBView.login", "PortalAuthDBView.logout", "PortalAuthDBView.login_code", "LocaleView.index", "UtilView.back", "HomeIndexView.index"}

DENIED = "denied"  # 403, or a redirect to the login page
OK = "ok"


def view_and_method(endpoint: str) -> tuple[str, str]:
    view, _, method = endpoint.partition(".")
    return view, method


def view_allows(app, endpoint: str) -> bool:
    """Whether the view offers that method at all (its base_permissions), whoever asks."""
    view, method = view_and_method(endpoint)
    instance = next((v for v in app.appbuilder.baseviews if v.__class__.__name__ == view), None)
    permission = "can_" + instance.method_permission_name.get(method, method)
    return permission in instance.base_permissions


def expected(app, endpoint: str, role: str) -> str:
    view, method = view_and_method(endpoint)
    if endpoint in PUBLIC_GET or endpoint in PUBLIC_POST or endpoint in NETWORK_ONLY:
        return OK
    if endpoint in PUBLIC_TOKEN:
        return GONE
    if role == "anonymous":
        return DENIED
    if view == "MenuApi":  # Flask-AppBuilder's JSON menu, permission "can_get" on "Menu": admins only
        return OK if role == "admin" else DENIED
    if role == "admin" and not view.startswith("Tenant"):
        return OK if view_allows(app, endpoint) else DENIED
    if view.startswith("Staff"):
        return OK if role == "staff" and view_allows(app, endpoint) else DENIED
    if view.startswith("Tenant"):
        return OK if role == "tenant" else DENIED
    if endpoint in STAFF_OWN_ACCOUNT:
        return OK if role == "staff" else DENIED
    if view in SECURITY_VIEWS:
        return DENIED
    raise AssertionError(f"route {endpoint} is not classified in test_route_matrix.py")


def first_pk(app, view: str):
    """The first row the view itself would list (its base filters applied)."""
    from flask_login import login_user

    instance = next((v for v in app.appbuilder.baseviews if v.__class__.__name__ == view), None)
    with app.test_request_context():
        login_user(app.appbuilder.sm.find_user(email="admin@example.org"))  # the staff scope sees every agency
        _, items = instance.datamodel.query(instance._base_filters, page=0, page_size=1)
        pk = items[0].id if items else None
        db.session.remove()
        return pk


def tenant_document_values(app) -> dict:
    """A document, a lease and a fully paid month of the demo tenant `locataire@example.org`."""
    from app.models import Document, Household, Lease, TenantAccount
    from app.services import ledger

    with app.app_context():
        household_id = db.session.scalar(sa.select(TenantAccount.household_id).join(
            TenantAccount.user).where(sa.text("ab_user.email = 'locataire@example.org'")))
        lease = db.session.scalar(sa.select(Lease).where(Lease.household_id == household_id).order_by(Lease.id))
        document_id = db.session.scalar(sa.select(Document.id).where(Document.household_id == household_id)
                                        .order_by(Document.id))
        statuses = ledger.month_statuses(ledger.lease_entries([lease.id]))
        period = max(p for (lease_id, p), status in statuses.items() if status.settled)
        assert db.session.get(Household, household_id) is not None
        return {"document_id": document_id, "lease_id": lease.id, "period": period, "household_id": household_id}


def tenant_request_values(app) -> dict:
    """A request of locataire@example.org, its attachment, and its insurance certificate."""
    from app.models import Attachment, InsuranceCertificate, RequestEvent, TenantRequest

    with app.app_context():
        attachment = db.session.scalar(sa.select(Attachment).where(Attachment.original_filename == "matrix.pdf"))
        request = db.session.get(TenantRequest, attachment.event.request_id)
        certificate = db.session.scalar(sa.select(InsuranceCertificate.id).where(
            InsuranceCertificate.household_id == request.household_id))
        assert db.session.get(RequestEvent, attachment.event_id) is not None
        return {"request_id": request.id, "attachment_id": attachment.id, "certificate_id": certificate}


def browsable_rules(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint):
        view, method = view_and_method(rule.endpoint)
        if "GET" not in rule.methods or method in NOT_BROWSED or rule.endpoint in FOLLOW_UP:
            continue
        if "group_by" in rule.arguments:
            continue
        yield rule


def build_url(app, rule) -> str | None:
    """The URL of `rule` with real values, or None for a Flask-AppBuilder security table the portal leaves empty
    (user groups)."""
    values = {}
    for argument in rule.arguments:
        if argument == "pk":
            values["pk"] = first_pk(app, rule.endpoint.split(".")[0])
            if values["pk"] is None:
                assert rule.endpoint.startswith("UserGroupModelView."), f"no row to browse for {rule.endpoint}"
                return None
        elif argument in ("mandate_id", "batch_id", "collection_id"):
            from app.models import DirectDebitCollection, DirectDebitMandate

            with app.app_context():  # the collection of the mandate whose RIB the fixture stored
                row = db.session.scalar(sa.select(DirectDebitCollection).join(DirectDebitMandate).where(
                    DirectDebitMandate.stored_name.is_not(None), DirectDebitCollection.batch_id.is_not(None)))
                values.update(mandate_id=row.mandate_id, batch_id=row.batch_id, collection_id=row.id)
        elif argument == "import_id":
            from app.models import BankFileImport

            with app.app_context():
                values["import_id"] = db.session.scalar(sa.select(BankFileImport.id))
        elif argument in ("request_id", "attachment_id", "certificate_id"):
            values.update(tenant_request_values(app))
        elif argument in ("transaction_id", "order_id"):
            from app.models import PaymentTransaction

            with app.app_context():
                row = db.session.scalar(sa.select(PaymentTransaction).where(
                    PaymentTransaction.order_id == "EL-MATRIX-000001"))
                values.update(transaction_id=row.id, order_id=row.order_id)
        elif argument in ("document_id", "lease_id", "period", "household_id"):
            values.update(tenant_document_values(app))
        elif argument == "token":
            values["token"] = "made-up-token-0123456789"
        elif argument == "filename":
            values["filename"] = "css/portal.css" if rule.endpoint == "static" else "css/bootstrap.min.css"
        else:
            raise AssertionError(f"no value for <{argument}> in {rule.rule}")
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def test_every_route_is_classified(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FOLLOW_UP:
            continue
        for role in ROLES:
            expected(app, rule.endpoint, role)


@pytest.fixture
def job_run(app, demo):
    """Rows the demo seed does not make: a recorded job run, and a card payment of locataire@example.org (who
    pays by direct debit) so that its receipt and return pages have something to show."""
    from datetime import date, timedelta
    from decimal import Decimal

    from app.models import (
        Direction, EntryKind, JobRun, JobStatus, LedgerEntry, PaymentStatus, PaymentTransaction, utcnow,
    )

    with app.app_context():
        db.session.add(JobRun(job_name="demo", started_at=utcnow(), finished_at=utcnow(), status=JobStatus.SUCCEEDED))
        db.session.add(PaymentTransaction(household_id=demo["locataire"], order_id="EL-MATRIX-000001",
                                          trans_id="000001", trans_day=date.today(), amount=Decimal("10.00"),
                                          ctx_mode="TEST", status=PaymentStatus.PAID, trans_uuid="m" * 32,
                                          notified_at=utcnow()))
        from app.models import Attachment, RequestEvent, TenantRequest
        from app.services import uploads

        event = db.session.scalar(sa.select(RequestEvent).join(TenantRequest).where(
            TenantRequest.household_id == demo["locataire"]).order_by(RequestEvent.id))
        attachment = Attachment(event_id=event.id)
        uploads.store(uploads.CheckedFile(uploads.PDF, b"%PDF-1.4 matrix", "matrix.pdf"), attachment)
        db.session.add(attachment)
        from app.models import InsuranceCertificate, ReviewStatus

        db.session.execute(sa.update(InsuranceCertificate).where(InsuranceCertificate.household_id == demo["retard"])
                           .values(status=ReviewStatus.PENDING))
        certificate = db.session.scalar(sa.select(InsuranceCertificate).where(
            InsuranceCertificate.household_id == demo["locataire"]))
        uploads.store(uploads.CheckedFile(uploads.PDF, b"%PDF-1.4 matrix", "assurance.pdf"), certificate)
        from app.models import DirectDebitMandate

        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["locataire"]))
        uploads.store(uploads.CheckedFile(uploads.PDF, b"%PDF-1.4 matrix", "rib.pdf"), mandate)
        db.session.add(LedgerEntry(household_id=mandate.household_id, lease_id=mandate.lease_id,
                                   kind=EntryKind.REGULARISATION, direction=Direction.DEBIT, amount=Decimal("5.00"),
                                   label="matrix", entry_date=date.today()))
        db.session.commit()
        from app.services import direct_debits, rent_calls

        month = rent_calls.next_period(date.today())
        rent_calls.call_rents(month, utcnow())
        direct_debits.prenotify(month - timedelta(days=20), utcnow())
        direct_debits.build_file(f"{month:%Y-%m}", mandate.debit_day, month - timedelta(days=10), utcnow())
        from app.models import BankFileImport

        db.session.add(BankFileImport(message_type="pain.002", message_id="MATRIX", filename="matrix.xml",
                                      sha256="0" * 64, report=[]))
        db.session.add(DirectDebitMandate(reference="EL-MATRIX-1", household_id=demo["retard"],
                                          lease_id=demo["retard_lease"], iban="FR7630004008190001234567879",
                                          account_holder="MATRIX", debit_day=7))
        db.session.commit()
        db.session.add(PaymentTransaction(household_id=demo["retard"], order_id="EL-MATRIX-000002",
                                          trans_id="000002", trans_day=date.today(), amount=Decimal("10.00"),
                                          ctx_mode="TEST", status=PaymentStatus.REVIEW, review_reason="matrix"))
        db.session.commit()
        from app.models import CollectionStatus, DirectDebitCollection, Household

        # a reject still to handle (StaffRejectQueueView): a rejected debit of a household marked in incident
        db.session.get(Household, demo["retard"]).payment_incident = True
        db.session.add(DirectDebitCollection(
            mandate_id=db.session.scalar(sa.select(DirectDebitMandate.id).where(
                DirectDebitMandate.reference == "EL-MATRIX-1")),
            household_id=demo["retard"], lease_id=demo["retard_lease"], period="2000-01", amount=Decimal("10.00"),
            notified_amount=Decimal("10.00"), sequence_type="FRST", end_to_end_id="EL-MATRIX-REJECT",
            collection_date=date.today(), status=CollectionStatus.REJECTED, rejected_on=date.today(),
            reject_reason="AM04"))
        db.session.commit()


@pytest.mark.parametrize("role", list(ROLES))
def test_route_matrix(app, client_for, job_run, role):
    client = client_for(ROLES[role])
    failures = []
    checked = 0
    for rule in browsable_rules(app):
        url = build_url(app, rule)
        if url is None:
            continue
        want = expected(app, rule.endpoint, role)
        response = client.get(url)
        checked += 1
        desk = response.status_code == 302 and "/agence/" in response.location  # staff show pages open the desk
        if want == OK and response.status_code != 200 and not desk:
            failures.append(f"{url} ({rule.endpoint}): expected 200, got {response.status_code}")
        if want == GONE and response.status_code != 404:
            failures.append(f"{url} ({rule.endpoint}): expected 404, got {response.status_code}")
        if want == DENIED:
            to_login = response.status_code == 302 and "/login/" in response.location
            if not (response.status_code in (401, 403, 404) or to_login):
                failures.append(f"{url} ({rule.endpoint}): expected denial, got {response.status_code}")
    assert checked > 40
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role, target", [
    ("anonymous", "/login/"),
    ("tenant", None),
    ("staff", "/agence/"),
    ("admin", "/agence/"),
])
def test_home_sends_each_role_where_it_works(client_for, role, target):
    response = client_for(ROLES[role]).get("/")
    if target is None:
        assert response.status_code == 200
        assert "Votre compte est" in response.get_data(as_text=True)
    else:
        assert response.status_code == 302
        assert response.location.endswith(target)


def test_json_login_api_is_not_exposed(app, demo):
    response = app.test_client().post("/api/v1/security/login",
                                      json={"username": "admin@example.org", "password": "Portail-2026!",
                                            "provider": "db"})
    assert response.status_code == 404


@pytest.mark.parametrize("role", ["anonymous", "tenant", "staff"])
def test_post_only_security_routes_refuse_non_admins(client_for, role):
    client = client_for(ROLES[role])
    for url in ("/users/action_post", "/roles/action_post", "/resetpassword/form", "/resetmypassword/form"):
        response = client.post(url, data={})
        assert response.status_code in (302, 400, 401, 403), (url, response.status_code)
        if response.status_code == 302:
            assert "/login/" in response.location or response.location.endswith("/"), response.location
