"""Headers, caching and CSRF, with CSRF left on as in production."""


def test_security_headers_on_every_page(app):
    response = app.test_client().get("/login/")
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    nonce = csp.split("'nonce-")[1].split("'")[0]
    page = response.get_data(as_text=True)
    assert page.count("<script") == page.count(f'nonce="{nonce}"')


def test_private_pages_are_not_cached_and_session_cookie_is_locked_down(app, client_for):
    client = client_for("gestionnaire@example.org")
    assert client.get("/staffhouseholdview/list/").headers["Cache-Control"] == "no-store"
    response = app.test_client().get("/login/")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_without_csrf_token_is_refused(app, demo):
    response = app.test_client().post("/login/", data={"username": "admin@example.org",
                                                       "password": "Portail-2026!"})
    assert response.status_code == 400


def test_staff_form_without_csrf_token_changes_nothing(app, client_for, demo):
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Agency

    client = client_for("gestionnaire@example.org")
    response = client.post("/staffagencyview/add", data={"code": "AG-X", "name": "Pirate", "street": "1 rue",
                                                         "postcode": "45000", "city": "Orléans", "phone": "0",
                                                         "email": "x@example.org"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(sa.select(Agency).where(Agency.code == "AG-X")) is None


def test_an_unknown_flask_appbuilder_action_is_a_404_not_a_500(app, client_for):
    """Flask-AppBuilder looked the action up without checking it exists: a 500 for anyone, even anonymous."""
    from tests.conftest import csrf_token

    for email, page in ((None, "/login/"), ("locataire@example.org", "/paiement/"),
                        ("gestionnaire@example.org", "/agence/prelevements/retours")):
        client = client_for(email)
        token = csrf_token(client, page)
        for url in ("/groups/action/nope/1", "/staffhouseholdview/action/nope/1", "/roles/action/nope/-224"):
            assert client.post(url, data={"csrf_token": token}).status_code in (302, 403, 404), (email, url)
