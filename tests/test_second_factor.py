"""Issue 12, point 5: staff and admin accounts can turn on a second factor (TOTP), and a setting makes it
mandatory for staff. The code is checked after the password, once per code, throttled."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import SecondFactor, utcnow
from tests.conftest import PASSWORD, csrf_token

STAFF = "gestionnaire@example.org"


def turn_on(app, client) -> str:
    """Turn the factor on from the page, as a person would; the secret read from the page."""
    page = "/agence/double-authentification/"
    client.post(f"{page}activer", data={"csrf_token": csrf_token(client, page)})
    text = client.get(page).get_data(as_text=True)
    assert "<svg" in text  # the QR code, inline
    secret = re.search(r'class="totp-secret">([A-Z2-7]+)<', text).group(1)
    response = client.post(f"{page}confirmer", data={"csrf_token": csrf_token(client, page),
                                                     "code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    return secret


def password_step(app, email=STAFF):
    client = app.test_client()
    response = client.post("/login/", data={"username": email, "password": PASSWORD,
                                            "csrf_token": csrf_token(client, "/login/")})
    return client, response


def next_code(secret: str) -> str:
    """The code of the next 30-second step: accepted (clock drift) and not used yet."""
    return pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))


def test_a_staff_sign_in_asks_for_the_code_after_the_password(app, client_for, demo):
    secret = turn_on(app, client_for(STAFF))
    with app.app_context():
        stored = db.session.execute(sa.text("SELECT secret FROM second_factor")).scalar()
    assert secret not in stored and stored.startswith("gAAAAA")  # encrypted at rest
    client, response = password_step(app)
    assert response.status_code == 302 and response.location.endswith("/login/code")
    assert client.get("/agence/").status_code == 302  # not signed in yet
    wrong = client.post("/login/code", data={"csrf_token": csrf_token(client, "/login/code"), "code": "000000"})
    assert wrong.status_code == 400 and "Ce code ne correspond pas" in wrong.get_data(as_text=True)
    code = next_code(secret)
    ok = client.post("/login/code", data={"csrf_token": csrf_token(client, "/login/code"), "code": code})
    assert ok.status_code == 302
    assert client.get("/agence/").status_code == 200
    again, _ = password_step(app)  # the same code a second time: refused
    replay = again.post("/login/code", data={"csrf_token": csrf_token(again, "/login/code"), "code": code})
    assert replay.status_code == 400


def test_wrong_codes_are_throttled(app, client_for, demo):
    secret = turn_on(app, client_for(STAFF))
    client, _ = password_step(app)
    for _ in range(5):
        client.post("/login/code", data={"csrf_token": csrf_token(client, "/login/code"), "code": "123456"})
    locked = client.post("/login/code", data={"csrf_token": csrf_token(client, "/login/code"),
                                              "code": next_code(secret)})
    assert locked.status_code == 400 and "Trop de codes erronés" in locked.get_data(as_text=True)


def test_tenants_never_get_the_second_step(app, demo):
    client, response = password_step(app, "locataire@example.org")
    assert response.status_code == 302 and "/login/code" not in response.location


def test_the_code_page_without_a_password_first_sends_to_the_login(app, demo):
    response = app.test_client().get("/login/code")
    assert response.status_code == 302 and "/login/" in response.location


def test_turning_it_off_needs_a_code(app, client_for, demo):
    staff = client_for(STAFF)
    secret = turn_on(app, staff)
    page = "/agence/double-authentification/"
    refused = staff.post(f"{page}desactiver", data={"csrf_token": csrf_token(staff, page), "code": "111111"})
    assert refused.status_code == 400
    assert staff.post(f"{page}desactiver", data={"csrf_token": csrf_token(staff, page),
                                                "code": next_code(secret)}).status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(SecondFactor.id))) == 0


@pytest.fixture
def mandatory(app):
    app.config["STAFF_SECOND_FACTOR_REQUIRED"] = True
    yield
    app.config["STAFF_SECOND_FACTOR_REQUIRED"] = False


def test_when_mandatory_staff_reach_only_the_page_that_turns_it_on(app, client_for, demo, mandatory):
    staff = client_for(STAFF)
    response = staff.get("/staffhouseholdview/list/")
    assert response.status_code == 302 and response.location.endswith("/agence/double-authentification/")
    assert client_for("locataire@example.org").get("/").status_code == 200  # tenants are not concerned
    turn_on(app, staff)
    assert staff.get("/staffhouseholdview/list/").status_code == 200
    page = "/agence/double-authentification/"
    staff.post(f"{page}desactiver", data={"csrf_token": csrf_token(staff, page), "code": "000000"})
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(SecondFactor.id))) == 1  # cannot be turned off
