"""Issue 12, point 6: every error a person can meet is a page of the portal, in their language, with a way back;
a 500 shows a short reference that is also in the log, never a trace."""

from __future__ import annotations

import logging
import re

import pytest

from tests.conftest import csrf_token

LAYOUT = 'id="main-content"'


def page_of(response) -> str:
    return response.get_data(as_text=True)


def test_reloading_a_form_address_is_a_405_in_the_layout(client_for):
    response = client_for("locataire@example.org").get("/paiement/payer")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    page = page_of(response)
    assert LAYOUT in page and "Page à ouvrir depuis son formulaire" in page and "Method Not Allowed" not in page
    assert "Retour à l&#39;accueil" in page or "Retour à l'accueil" in page


def test_a_body_over_the_limit_is_a_413_that_says_the_limit(app, client_for):
    client = client_for("locataire@example.org")
    token = csrf_token(client, "/demandes/nouvelle")
    too_big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/demandes/nouvelle", data={"csrf_token": token, "body": too_big.decode()})
    assert response.status_code == 413
    page = page_of(response)
    assert LAYOUT in page and "Envoi trop volumineux" in page
    assert f"{app.config['MAX_CONTENT_LENGTH'] // (1024 * 1024)} Mo" in page and "Request Entity Too Large" not in page


def test_an_error_page_speaks_the_visitor_s_language(client_for):
    client = client_for("locataire@example.org")
    client.get("/lang/en")
    page = page_of(client.get("/paiement/payer"))
    assert 'lang="en"' in page and "Page à ouvrir" not in page and LAYOUT in page


def test_the_anonymous_visitor_is_offered_the_login_page(app, demo):
    page = page_of(app.test_client().get("/nulle-part"))
    assert "Page introuvable" in page and "/login/" in page


@pytest.fixture
def failing_home(app, monkeypatch):
    """A fault deep in a page: the home page's request list raises. The test app re-raises exceptions; a server
    does not (PROPAGATE_EXCEPTIONS off)."""
    from app import home

    def broken(*args, **kwargs):
        raise RuntimeError("the database said no: secret-detail-42")

    monkeypatch.setattr(home.requests, "household_requests", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)


def test_a_500_shows_a_reference_that_is_in_the_log_and_no_trace(client_for, failing_home, caplog):
    client = client_for("locataire@example.org")
    with caplog.at_level(logging.ERROR):
        response = client.get("/")
    assert response.status_code == 500
    page = page_of(response)
    assert LAYOUT in page and "Une erreur est survenue" in page
    assert "Traceback" not in page and "secret-detail-42" not in page and "RuntimeError" not in page
    reference = re.search(r"Référence de l(?:&#39;|')erreur : <strong>([0-9A-F]{8})</strong>", page).group(1)
    [record] = [r for r in caplog.records if reference in r.getMessage()]
    assert record.exc_info and "secret-detail-42" in str(record.exc_info[1])  # the operator has the trace
    second = re.search(r"<strong>([0-9A-F]{8})</strong>", page_of(client.get("/"))).group(1)
    assert second != reference  # one reference per error
    assert client.get("/mon-compte/").status_code == 200  # the session survived the failed request


def test_a_client_asking_for_json_gets_json(client_for, failing_home):
    client = client_for("locataire@example.org")
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 500 and response.is_json
    assert set(response.json) == {"error", "message", "reference"}
    missing = client.get("/nulle-part", headers={"Accept": "application/json"})
    assert missing.status_code == 404 and missing.json["error"] == "Page introuvable"
