"""Test fixtures: one app per database backend for the session, a clean database per test, a client per role.

Database tests run twice: on SQLite and on a real PostgreSQL cluster that this file starts from the machine's
PostgreSQL binaries (initdb + pg_ctl, as the `postgres` user when running as root) and stops at the end.
Data is created inside a short app context; requests are sent outside it (a long-lived context would let
Flask-Login's cached user leak between clients).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from config import TestingConfig

PASSWORD = "Portail-2026!"
KEEP_TABLES = {"ab_role", "ab_permission", "ab_view_menu", "ab_permission_view", "ab_permission_view_role",
               "alembic_version"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


class PostgresCluster:
    """A throwaway PostgreSQL cluster in a temporary folder, listening on a free loopback port."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="espace-pg-"))
        self.datadir = self.root / "data"
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user)
            os.chmod(self.root, 0o700)

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bindir / args[0]), *args[1:]], check=True, user=self.user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.root)

    def start(self) -> str:
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres", "--encoding=UTF8",
                  "--locale=C.UTF-8")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off " \
                  "-c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.datadir), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        admin = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres",
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text("CREATE DATABASE espace_test"))
        admin.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/espace_test"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    if os.environ.get("TEST_POSTGRES_URL"):
        yield os.environ["TEST_POSTGRES_URL"]
        return
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql): PostgreSQL tests skipped")
    cluster = PostgresCluster(bindir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def make_app(database_url: str, tmp: Path, **overrides):
    """Build a test app on `database_url` and bring its schema up through the migrations."""
    from flask_migrate import upgrade

    app = create_app(
        TestingConfig(),
        SQLALCHEMY_DATABASE_URI=database_url,
        INSTANCE_DIR=tmp,
        FILES_DIR=tmp / "files",
        MAIL_OUTBOX_DIR=tmp / "outbox",
        **overrides,
    )
    with app.app_context():
        upgrade()
        app.appbuilder.sm.sync_roles_and_permissions()
    return app


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def app(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"app-{request.param}")
    url = f"sqlite:///{tmp / 'test.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    application = make_app(url, tmp)
    application.config["DB_BACKEND"] = request.param
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def wipe(app) -> None:
    """Delete every row but the roles and permissions."""
    with app.app_context():
        db.session.remove()
        tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
        with db.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    connection.execute(table.delete())


@pytest.fixture(autouse=True)
def _clean_database(request):
    yield
    if "app" in request.fixturenames:
        wipe(request.getfixturevalue("app"))


@pytest.fixture
def demo(app):
    """A small demo landlord (8 households, the 4 demo accounts); returns a dict of useful ids."""
    from app.services.demo import client_number, seed_demo
    from app.models import Household

    with app.app_context():
        seed_demo(8, echo=lambda *_: None)
        ids = {}
        for index, key in ((0, "locataire"), (1, "retard"), (2, "other")):
            household = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(index)))
            ids[key] = household.id
            ids[f"{key}_lease"] = household.leases[0].id
        return ids


CSRF_RE = re.compile(r'<input[^>]*name="(?:[\w-]+-)?csrf_token"[^>]*>')
VALUE_RE = re.compile(r'value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    response = client.get(url)
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {url}"
    return VALUE_RE.search(match.group(0)).group(1)


def login(client, email: str, password: str = PASSWORD):
    token = csrf_token(client, "/login/")
    return client.post("/login/", data={"username": email, "password": password, "csrf_token": token})


@pytest.fixture
def client_for(app, demo):
    """`client_for("locataire@example.org")` returns a test client logged in as that demo account."""

    def make(email: str | None):
        client = app.test_client()
        if email:
            response = login(client, email)
            assert response.status_code == 302, f"login failed for {email}"
        return client

    return make


@pytest.fixture(scope="session")
def smtp_server():
    from tests.mailbox import SMTPServer

    with SMTPServer() as server:
        yield server


@pytest.fixture
def mailbox(app, smtp_server):
    """Route the app's mail to the loopback SMTP server for this test; `mailbox.deliver()` sends the queue."""
    from app.mail import deliver_pending

    saved = {k: app.config.get(k) for k in ("MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS")}
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port, MAIL_USE_TLS=False)
    box = smtp_server.mailbox
    box.messages.clear()

    def deliver():
        with app.app_context():
            return deliver_pending()

    box.deliver = deliver
    yield box
    app.config.update(saved)
