"""Per-address limits (Flask-Limiter) on the login and account forms, on an app where they are switched on."""

import pytest

from app.services.demo import seed_demo
from tests.conftest import PASSWORD, csrf_token, make_app, wipe


@pytest.fixture(scope="module")
def limited_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limited")
    application = make_app(f"sqlite:///{tmp / 'limited.db'}", tmp, RATELIMIT_ENABLED=True, AUTH_RATE_LIMITED=True,
                           AUTH_RATE_LIMIT="5 per minute", ACCOUNT_FORMS_RATE_LIMIT="3 per minute")
    with application.app_context():
        seed_demo(2, echo=lambda *_: None)
    yield application
    wipe(application)


def test_login_posts_are_limited_per_address(limited_app):
    client = limited_app.test_client()
    token = csrf_token(client, "/login/")
    statuses = [client.post("/login/", data={"username": f"user{i}@example.org", "password": "x",
                                             "csrf_token": token}).status_code for i in range(7)]
    assert statuses[:5] == [200] * 5
    assert statuses[5] == 429
    page = client.post("/login/", data={"username": "locataire@example.org", "password": PASSWORD,
                                        "csrf_token": token})
    assert page.status_code == 429
    assert "Trop de tentatives" in page.get_data(as_text=True)
    # another address is not affected
    other = limited_app.test_client()
    token = csrf_token(other, "/login/")
    response = other.post("/login/", data={"username": "locataire@example.org", "password": PASSWORD,
                                           "csrf_token": token}, environ_base={"REMOTE_ADDR": "127.0.0.9"})
    assert response.status_code == 302


def test_registration_and_recovery_posts_are_limited_per_address(limited_app):
    client = limited_app.test_client()
    token = csrf_token(client, "/compte/creer")
    data = {"csrf_token": token, "reference": "12345678", "surname": "Personne", "email": "a@example.net",
            "password": "Tr0mpette-99!", "confirm": "Tr0mpette-99!", "terms": "y"}
    statuses = [client.post("/compte/creer", data=data, environ_base={"REMOTE_ADDR": "127.0.0.20"}).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert client.get("/compte/creer", environ_base={"REMOTE_ADDR": "127.0.0.20"}).status_code == 200


@pytest.fixture(scope="module")
def login_limited_app(tmp_path_factory):
    """The login limit as configured by default: 10 per address per 5 minutes."""
    tmp = tmp_path_factory.mktemp("login-limited")
    application = make_app(f"sqlite:///{tmp / 'login-limited.db'}", tmp, RATELIMIT_ENABLED=True,
                           AUTH_RATE_LIMITED=True, AUTH_RATE_LIMIT="10 per 5 minute")
    with application.app_context():
        seed_demo(2, echo=lambda *_: None)
    yield application
    wipe(application)


def _sign_in(application, address: str, username: str, password: str):
    """A POST to the login page from `address`, in a browser of its own; returns (client, response)."""
    client = application.test_client()
    token = csrf_token(client, "/login/")
    response = client.post("/login/", data={"username": username, "password": password, "csrf_token": token},
                           environ_base={"REMOTE_ADDR": address})
    return client, response


def test_successful_logins_do_not_count_toward_the_address_limit(login_limited_app):
    """Twelve tenants signing in behind one address (a social-services office, a mobile network) all get in."""
    statuses, signed_in = [], []
    for _ in range(12):
        client, response = _sign_in(login_limited_app, "127.0.0.30", "locataire@example.org", PASSWORD)
        statuses.append(response.status_code)
        with client.session_transaction() as session:
            signed_in.append(bool(session.get("_user_id")))
    assert statuses == [302] * 12
    assert signed_in == [True] * 12
    # nor did they use up the failures the address is allowed
    statuses = [_sign_in(login_limited_app, "127.0.0.30", f"user{i}@example.org", "x")[1].status_code
                for i in range(11)]
    assert statuses == [200] * 10 + [429]


def test_failed_logins_still_count_per_address(login_limited_app):
    statuses = [_sign_in(login_limited_app, "127.0.0.31", f"user{i}@example.org", "wrong")[1].status_code
                for i in range(10)]
    assert statuses == [200] * 10
    assert _sign_in(login_limited_app, "127.0.0.31", "user10@example.org", "wrong")[1].status_code == 429
    # the window is the address's: the right password is refused too, with the 429 page
    client, page = _sign_in(login_limited_app, "127.0.0.31", "locataire@example.org", PASSWORD)
    assert page.status_code == 429
    assert "Trop de tentatives" in page.get_data(as_text=True)
    with client.session_transaction() as session:
        assert not session.get("_user_id")
    # the account itself is not locked: from another address it signs in
    assert _sign_in(login_limited_app, "127.0.0.32", "locataire@example.org", PASSWORD)[1].status_code == 302
