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
