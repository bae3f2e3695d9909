"""Issue 11, findings 1, 4 (tokens in logs) and 7: logout ends the session on the server, sessions have an absolute
lifetime, no token reaches a log line or a Referer, and no response names the server or its version."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import http.client
import logging
import socket
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_appbuilder.security.sqla.models import User
from werkzeug.serving import WSGIRequestHandler, make_server

from app.extensions import db
from app.models import Household, UserSession, utcnow
from app.services import accounts
from tests.conftest import PASSWORD, csrf_token, login
from tests.mailbox import link_in

BASE = "http://127.0.0.1:8080"
NEW_PASSWORD = "Tr0mpette-99!"
ROOT = Path(__file__).resolve().parent.parent


def cookie_name(app) -> str:
    return app.config["SESSION_COOKIE_NAME"]


def copy_session(app, source):
    """A second browser holding a copy of `source`'s session cookie (what a thief replays)."""
    thief = app.test_client()
    thief.set_cookie(cookie_name(app), source.get_cookie(cookie_name(app)).value)
    return thief


def session_data(app, client) -> dict:
    value = client.get_cookie(cookie_name(app)).value
    return app.session_interface.get_signing_serializer(app).loads(value)


def ended(response) -> bool:
    return response.status_code == 302 and "/login/" in response.location


def records(app, email: str) -> list[UserSession]:
    with app.app_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.email == email))
        rows = db.session.scalars(sa.select(UserSession).where(UserSession.user_id == user_id)
                                  .order_by(UserSession.id)).all()
        db.session.expunge_all()
        return rows


def shift_sessions(app, email: str, **ages: timedelta) -> None:
    """Move the clock through the records: `created_at=timedelta(hours=13)` makes the sign-in 13 hours old."""
    with app.app_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.email == email))
        now = utcnow()
        db.session.execute(sa.update(UserSession).where(UserSession.user_id == user_id)
                           .values(**{column: now - age for column, age in ages.items()}))
        db.session.commit()


# --- finding 1: logout ends the session on the server ---------------------------------------------------------

@pytest.mark.parametrize("email, page", [("locataire@example.org", "/mon-compte/"),
                                         ("gestionnaire@example.org", "/stafftenantaccountview/list/")])
def test_a_cookie_copied_before_logout_is_anonymous_after_it(app, client_for, email, page):
    browser = client_for(email)
    thief = copy_session(app, browser)
    assert thief.get(page).status_code == 200  # the copy works while the session is open
    response = browser.post("/logout/", data={"csrf_token": csrf_token(browser, "/mon-compte/")})
    assert ended(response)
    assert not session_data(app, browser).get("_user_id")  # the browser's cookie no longer names anyone
    assert ended(thief.get(page))  # the replayed cookie is anonymous: the login page
    assert ended(browser.get(page))
    (record,) = records(app, email)
    assert record.revoked_at is not None


def test_logout_is_a_post_with_the_csrf_token_only(app, client_for):
    """A GET (a link or an image on another site) does not log out: it shows the button; a POST without the token
    is refused."""
    browser = client_for("locataire@example.org")
    thief = copy_session(app, browser)
    page = browser.get("/logout/")
    assert page.status_code == 200 and 'method="post"' in page.text and 'name="csrf_token"' in page.text
    assert browser.get("/mon-compte/").status_code == 200  # still signed in
    assert browser.post("/logout/").status_code == 400  # no CSRF token: refused, still signed in
    assert browser.get("/mon-compte/").status_code == 200
    response = browser.post("/logout/", data={"csrf_token": csrf_token(browser, "/mon-compte/")})
    assert ended(response)
    assert ended(thief.get("/mon-compte/"))


def test_the_cookie_carries_a_random_id_whose_hash_only_is_stored(app, client_for):
    first, second = client_for("locataire@example.org"), client_for("locataire@example.org")
    ids = [session_data(app, client)["_sid"] for client in (first, second)]
    assert ids[0] != ids[1] and min(len(i) for i in ids) >= 40
    stored = records(app, "locataire@example.org")
    assert [r.token_hash for r in stored] == [hashlib.sha256(i.encode()).hexdigest() for i in ids]
    assert all(r.revoked_at is None and r.created_at == r.last_seen_at for r in stored)
    # logging out of one browser leaves the other open
    first.post("/logout/", data={"csrf_token": csrf_token(first, "/mon-compte/")})
    assert ended(first.get("/mon-compte/"))
    assert second.get("/mon-compte/").status_code == 200


def test_a_session_without_a_server_record_is_ended(app, client_for):
    """A cookie signed before this change (no record), or one whose record was purged, signs nobody in."""
    browser = client_for("locataire@example.org")
    with browser.session_transaction() as session:
        session.pop("_sid")
    assert ended(browser.get("/mon-compte/"))


def test_every_login_user_opens_a_record_staff_views_included(app, demo):
    """The hook is Flask-Login's own: any Flask-AppBuilder auth view that calls login_user / logout_user gets a
    server-side session, not only the portal's login page."""
    from flask import session
    from flask_login import login_user, logout_user

    with app.test_request_context("/"):
        user = db.session.scalar(sa.select(User).where(User.email == "admin@example.org"))
        login_user(user)
        raw = session["_sid"]
        assert session["_sv"] == accounts.session_version(user.id) and session.permanent
        assert accounts.session_is_live(raw, user.id, utcnow())
        logout_user()
        assert "_sid" not in session
        assert not accounts.session_is_live(raw, user.id, utcnow())


def test_absolute_lifetime_ends_a_session_that_requests_keep_renewing(app, client_for):
    assert app.config["SESSION_MAX_LIFETIME"] == timedelta(hours=12)
    browser = client_for("locataire@example.org")
    thief = copy_session(app, browser)
    # eleven hours in, seen a minute ago: still open, and each request renews the idle timeout
    shift_sessions(app, "locataire@example.org", created_at=timedelta(hours=11), last_seen_at=timedelta(minutes=2))
    assert thief.get("/mon-compte/").status_code == 200
    (record,) = records(app, "locataire@example.org")
    assert utcnow() - record.last_seen_at < timedelta(minutes=1)
    # twelve hours after sign-in it ends, however recent the last request
    shift_sessions(app, "locataire@example.org", created_at=timedelta(hours=12, seconds=1),
                   last_seen_at=timedelta(seconds=30))
    assert ended(thief.get("/mon-compte/"))
    assert ended(browser.get("/mon-compte/"))
    # and a new sign-in starts a new twelve hours
    assert login(browser, "locataire@example.org").status_code == 302
    assert browser.get("/mon-compte/").status_code == 200


def test_idle_timeout_is_enforced_on_the_server_too(app, client_for):
    browser = client_for("locataire@example.org")
    idle = app.config["PERMANENT_SESSION_LIFETIME"]
    shift_sessions(app, "locataire@example.org", last_seen_at=idle - timedelta(minutes=1))
    assert browser.get("/mon-compte/").status_code == 200
    shift_sessions(app, "locataire@example.org", last_seen_at=idle + timedelta(seconds=1))
    assert ended(browser.get("/mon-compte/"))


def test_last_seen_is_written_at_most_once_a_minute(app, client_for):
    browser = client_for("locataire@example.org")
    shift_sessions(app, "locataire@example.org", last_seen_at=timedelta(seconds=30))
    (before,) = records(app, "locataire@example.org")
    for _ in range(3):
        assert browser.get("/mon-compte/").status_code == 200
    (after,) = records(app, "locataire@example.org")
    assert after.last_seen_at == before.last_seen_at  # no write per request
    shift_sessions(app, "locataire@example.org", last_seen_at=timedelta(seconds=61))
    assert browser.get("/mon-compte/").status_code == 200
    (touched,) = records(app, "locataire@example.org")
    assert utcnow() - touched.last_seen_at < timedelta(seconds=30)


def test_purge_job_deletes_only_sessions_ended_more_than_a_day_ago(app, demo):
    now = utcnow()
    with app.app_context():
        user_id = db.session.scalar(sa.select(User.id).where(User.email == "locataire@example.org"))
        idle, absolute = app.config["PERMANENT_SESSION_LIFETIME"], app.config["SESSION_MAX_LIFETIME"]
        day = timedelta(days=1)
        rows = {
            "live": {"created_at": now - timedelta(hours=1), "last_seen_at": now},
            "revoked_today": {"created_at": now - timedelta(hours=2), "last_seen_at": now, "revoked_at": now},
            "revoked_long_ago": {"created_at": now - 3 * day, "last_seen_at": now - 3 * day,
                                 "revoked_at": now - 2 * day},
            "idle_long_ago": {"created_at": now - 2 * day,
                              "last_seen_at": now - idle - day - timedelta(minutes=1)},
            "too_old_long_ago": {"created_at": now - absolute - day - timedelta(minutes=1), "last_seen_at": now},
        }
        for name, values in rows.items():
            db.session.add(UserSession(token_hash=hashlib.sha256(name.encode()).hexdigest(), user_id=user_id,
                                       **values))
        db.session.commit()
        assert accounts.purge_sessions(now) == 3
        left = set(db.session.scalars(sa.select(UserSession.token_hash)))
        assert left == {hashlib.sha256(name.encode()).hexdigest() for name in ("live", "revoked_today")}
        assert accounts.purge_sessions(now) == 0


def test_closing_the_account_revokes_the_session_record(app, client_for):
    browser = client_for("retard@example.org")
    thief = copy_session(app, browser)
    response = browser.post("/mon-compte/fermer", data={"csrf_token": csrf_token(browser, "/mon-compte/fermer"),
                                                         "password": PASSWORD})
    assert ended(response)
    assert ended(thief.get("/mon-compte/"))
    with app.app_context():
        revoked = db.session.scalars(sa.select(UserSession.revoked_at)).all()
    assert len(revoked) == 1 and revoked[0] is not None


def test_an_admin_disabling_a_user_ends_the_copied_session(app, client_for):
    browser = client_for("locataire@example.org")
    thief = copy_session(app, browser)
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "locataire@example.org"))
        user.active = False  # what Flask-AppBuilder's user screen does
        db.session.commit()
    assert ended(thief.get("/mon-compte/"))
    assert ended(browser.get("/mon-compte/"))


# --- finding 4: no token in a log line or a Referer -------------------------------------------------------------

@contextlib.contextmanager
def dev_server(app):
    """The app served the way `python run.py` serves it: Werkzeug's server with the portal's request handler."""
    from app import http as portal_http

    handler = getattr(portal_http, "PortalRequestHandler", WSGIRequestHandler)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=5)


def fetch(port: int, path: str, method: str = "GET"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


@pytest.fixture
def newcomer(app, demo):
    with app.app_context():
        household = db.session.get(Household, demo["other"])
        return {"client_number": household.client_number, "surname": household.signatory_last_name}


def register(client, newcomer, email="nouveau@example.net"):
    return client.post("/compte/creer", data={
        "csrf_token": csrf_token(client, "/compte/creer"), "reference": newcomer["client_number"],
        "surname": newcomer["surname"], "email": email, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD,
        "terms": "y"})


@pytest.fixture
def logs(caplog, monkeypatch):
    """caplog at DEBUG with the loggers that matter enabled: Alembic's `fileConfig` (run by the migrations in the
    `app` fixture) disables every logger that existed before it, `werkzeug` and `app.*` included."""
    for name in ("werkzeug", "app", "app.mail", "app.payments.views", "app.scheduler"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    caplog.set_level(logging.DEBUG)
    return caplog


def logged_text(caplog) -> str:
    """Every captured record as a handler would write it (message, traceback), plus the raw messages."""
    return caplog.text + "\n".join(record.getMessage() for record in caplog.records)


def test_no_log_record_of_an_activation_holds_the_token(app, newcomer, mailbox, logs):
    caplog = logs
    with dev_server(app) as port:
        assert register(app.test_client(), newcomer).status_code == 200
        mailbox.deliver()
        link = link_in(mailbox.last_to("nouveau@example.net"), BASE)
        token = link.rsplit("/", 1)[1]
        response = fetch(port, link)
    assert response.status == 302 and response.getheader("Location").endswith("/login/")
    access = [r.getMessage() for r in caplog.records if r.name == "werkzeug" and "/compte/activer/" in r.getMessage()]
    assert access and all("[redacted]" in line for line in access), access  # the request was logged, redacted
    assert token not in logged_text(caplog)


def test_the_werkzeug_logger_redacts_every_token_route(app, logs):
    from app import http as portal_http

    caplog = logs
    werkzeug_logger = logging.getLogger("werkzeug")
    secret = "Zm9vYmFyLXNlY3JldC10b2tlbi0xMjM0NTY3ODkw"
    token_routes = sorted(rule.rule for rule in app.url_map.iter_rules() if "token" in rule.arguments)
    assert token_routes == ["/compte/activer/<token>", "/compte/confirmer-email/<token>",
                            "/compte/nouveau-mot-de-passe/<token>"]
    for rule in token_routes:
        path = rule.replace("<token>", secret)
        # exactly what Werkzeug's request handler logs for a request
        werkzeug_logger.info('127.0.0.1 - - [25/Nov/2026 22:00:00] "%s" %s %s', f"GET {path} HTTP/1.1", "302", "-")
        werkzeug_logger.info('127.0.0.1 - - [25/Nov/2026 22:00:00] "%s" %s %s',
                             f"\x1b[32mPOST {path}?next=/ HTTP/1.1\x1b[0m", "302", "-")
    assert len(caplog.records) == 2 * len(token_routes)
    assert secret not in logged_text(caplog)
    assert "/compte/activer/[redacted] HTTP/1.1" in caplog.text
    assert portal_http.redact("GET /compte/activer/ HTTP/1.1") == "GET /compte/activer/ HTTP/1.1"


def test_the_apps_loggers_redact_tokens_in_messages_and_tracebacks(app, logs):
    caplog = logs
    secret = "c2VjcmV0LXJlc2V0LWxpbmstdG9rZW4tMDk4NzY1NDMyMQ"
    link = f"{BASE}/compte/nouveau-mot-de-passe/{secret}"
    logging.getLogger("app.mail").warning("mail not sent: %s", f"link {link}")
    app.logger.info("confirm at %s", f"/compte/confirmer-email/{secret}")
    try:
        raise RuntimeError(f"could not render {link}")
    except RuntimeError:
        logging.getLogger("app.payments.views").exception("failed")
    logging.getLogger("app.scheduler").info("callback /x?reset_token=%s&page=2", secret)
    assert len(caplog.records) == 4
    assert secret not in logged_text(caplog)
    assert "[redacted]" in caplog.text and "RuntimeError: could not render" in caplog.text


def test_token_pages_send_no_path_in_a_referer(app, demo, mailbox):
    client = app.test_client()
    client.post("/compte/mot-de-passe-oublie", data={
        "csrf_token": csrf_token(client, "/compte/mot-de-passe-oublie"), "email": "locataire@example.org"})
    mailbox.deliver()
    link = link_in(mailbox.last_to("locataire@example.org"), BASE)
    page = client.get(link)
    assert page.status_code == 200
    # the page's own requests (its styles, scripts, and the form's POST) carry the origin at most, never the token
    assert page.headers["Referrer-Policy"] in ("no-referrer", "origin", "strict-origin")
    for path in ("/", "/login/", "/compte/activer/x"):
        assert app.test_client().get(path).headers["Referrer-Policy"] in ("no-referrer", "origin", "strict-origin")


def test_forms_still_work_over_https_with_an_origin_only_referer(app, demo):
    """Why not `no-referrer`: over HTTPS Flask-WTF refuses a form without a Referer of this origin."""
    client = app.test_client()
    page = client.get("/login/", base_url="https://localhost")
    token = csrf_token(client, "/login/")
    data = {"username": "locataire@example.org", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login/", data=data, base_url="https://localhost").status_code == 400  # no Referer
    response = client.post("/login/", data=data, base_url="https://localhost",
                           headers={"Referer": "https://localhost/"})  # what strict-origin sends
    assert page.status_code == 200 and response.status_code == 302


# --- finding 7: no server name or version in responses ----------------------------------------------------------

def test_the_development_server_sends_no_server_banner(app, demo):
    with dev_server(app) as port:
        answers = [fetch(port, "/health"), fetch(port, "/login/"), fetch(port, "/nulle-part"),
                   fetch(port, "/health", method="HEAD")]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # refused by http.server itself
            raw.sendall(b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n")
            malformed = raw.recv(65536).decode("latin-1")
    assert [a.status for a in answers] == [200, 200, 404, 200]
    for answer in answers:
        assert answer.getheader("Server") is None, answer.getheaders()
        headers = " ".join(f"{k}: {v}" for k, v in answer.getheaders())
        assert "Werkzeug" not in headers and "Python" not in headers
    assert malformed.startswith("HTTP/1.") and " 431 " in malformed.split("\r\n")[0]
    assert "server:" not in malformed.lower() and "Werkzeug" not in malformed and "Python/" not in malformed


def test_run_py_serves_with_the_quiet_request_handler():
    tree = ast.parse((ROOT / "run.py").read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "run"]
    assert calls, "run.py no longer calls app.run"
    handler = {kw.arg: kw.value for kw in calls[0].keywords}.get("request_handler")
    assert isinstance(handler, ast.Name) and handler.id == "PortalRequestHandler"
