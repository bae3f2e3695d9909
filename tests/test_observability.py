"""Issue 13, point 3 « Watch it »: request ids, structured logs without secrets, health probes, Prometheus metrics
(app/observability.py, app/probes.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from app import create_app, observability, probes
from app.extensions import db
from app.models import JobRun, JobStatus, OutgoingMail, utcnow
from config import ConfigError, TestingConfig
from tests.conftest import csrf_token, make_app

ROOT = Path(__file__).resolve().parent.parent
GENERATED_ID = re.compile(r"[0-9A-F]{8}")
IBAN = "FR7630004008190001234567879"
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}
TOKEN = "metrics-token-for-tests-0123456789"


class Captured:
    """What the portal's log handler wrote, one JSON object a line."""

    def __init__(self, stream: io.StringIO):
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def json_logs(app, monkeypatch):
    """The portal's handler (put back if the migrations' logging config removed it), writing JSON to a buffer."""
    handler = observability.configure_logging(app.config)
    stream, formatter = io.StringIO(), handler.formatter
    handler.setStream(stream)
    handler.setFormatter(observability.make_formatter("json"))
    for name in ("app", "app.requests", "app.tests"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    yield Captured(stream)
    root.setLevel(level)
    handler.setStream(None)  # back to sys.stderr, looked up at each write
    handler.setFormatter(formatter)


# --- request ids and JSON lines ---------------------------------------------------------------------------------

def test_a_json_line_carries_the_request_id_of_the_response(app, json_logs):
    response = app.test_client().get("/login/")
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    [line] = [line for line in json_logs.lines() if line["logger"] == "app.requests"]
    assert line["request_id"] == request_id
    assert list(line)[:5] == ["time", "level", "logger", "message", "request_id"]
    assert line["level"] == "INFO" and line["endpoint"] == "PortalAuthDBView.login" and line["status"] == 200
    assert line["message"].startswith("GET /login/ 200")
    logging.getLogger("app.tests").info("outside any request")
    assert json_logs.lines()[-1]["request_id"] is None
    assert app.test_client().get("/login/").headers["X-Request-ID"] != request_id  # one id per request


@pytest.mark.parametrize("incoming", ["abc-123_DEF.456", "a" * 64, "0f8fad5b-d9cb-469f-a165-70867728950e"])
def test_a_sane_incoming_request_id_is_kept(app, json_logs, incoming):
    response = app.test_client().get("/login/", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming
    logging.getLogger("app.tests").info("page done")  # outside the request: no id
    assert [line["request_id"] for line in json_logs.lines()] == [incoming, None]


@pytest.mark.parametrize("incoming", ["has spaces in it", "x" * 500, "abcdefgh\nX-Evil: 1", "short",
                                      "<script>x</script>", "abcdefgh;rm", ""])
def test_an_insane_incoming_request_id_is_replaced(app, incoming):
    response = app.test_client().get("/health/live", environ_base={"HTTP_X_REQUEST_ID": incoming})
    assert response.headers["X-Request-ID"] != incoming
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_the_text_format_shows_the_request_id_too(app, json_logs):
    handler = observability.portal_handler()
    handler.setFormatter(observability.make_formatter("text"))
    response = app.test_client().get("/login/")
    assert f" INFO app.requests [{response.headers['X-Request-ID']}] GET /login/ 200 " in json_logs.text
    logging.getLogger("app.tests").warning("no request here")
    assert json_logs.text.splitlines()[-1].endswith(" WARNING app.tests [-] no request here")


@pytest.fixture
def failing_home(app, monkeypatch):
    from app import home

    def broken(*args, **kwargs):
        raise RuntimeError("the database said no")

    monkeypatch.setattr(home.requests, "household_requests", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)


def test_a_500_shows_the_request_id_of_its_log_line(client_for, failing_home, json_logs):
    client = client_for("locataire@example.org")
    response = client.get("/")
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    page = response.get_data(as_text=True)
    assert re.search(r"Référence de l(?:&#39;|')erreur : <strong>([^<]+)</strong>", page).group(1) == request_id
    [error] = [line for line in json_logs.lines() if line["level"] == "ERROR"]
    assert error["request_id"] == request_id and request_id in error["message"]
    assert "RuntimeError: the database said no" in error["exc_info"]
    # a proxy's id is the reference too, and the JSON error body says the same
    proxied = client.get("/", headers={"X-Request-ID": "proxy-7f3a9c", "Accept": "application/json"})
    assert proxied.status_code == 500 and proxied.json["reference"] == "proxy-7f3a9c"
    assert proxied.headers["X-Request-ID"] == "proxy-7f3a9c"


def test_other_error_pages_show_the_request_id(app, demo):
    response = app.test_client().get("/nulle-part", headers={"X-Request-ID": "support-case-42"})
    assert response.status_code == 404 and response.headers["X-Request-ID"] == "support-case-42"
    assert "<strong>support-case-42</strong>" in response.get_data(as_text=True)


# --- nothing secret in a line -----------------------------------------------------------------------------------

def test_no_password_token_iban_or_cookie_reaches_the_log_output(app, demo, json_logs, caplog):
    caplog.set_level(logging.INFO)
    password = "Tr0mpette-Secr3te!"
    client = app.test_client()
    token = csrf_token(client, "/login/")
    for attempt in (password, "Portail-2026!"):  # a failed and a successful login
        client.post("/login/", data={"username": "locataire@example.org", "password": attempt, "csrf_token": token},
                    headers={"Authorization": "Bearer header-secret-0001"})
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    log = logging.getLogger("app.tests")
    log.warning("RIB refusé : %s", "FR76 3000 4008 1900 0123 4567 879")
    log.warning("mandate for iban=%s", IBAN.lower())
    log.info("form %s", MultiDict([("username", "x"), ("password", password), ("csrf_token", token)]))
    log.info("login %s", {"password": password, "user": "x"})
    log.info("headers %s", [("Cookie", f"espace_session={cookie}"), ("Authorization", "Bearer header-secret-0002")])
    log.info("request had Cookie: espace_session=%s; lang=fr", cookie)
    log.info("calling the bank with Authorization: Bearer %s", "header-secret-0003")
    log.info("reset link sent", extra={"password": password, "reset_token": "tok-0004", "rib": IBAN,
                                        "headers": {"Cookie": cookie, "X-Ok": "fine"}})
    try:
        raise ValueError(f"bad IBAN {IBAN} for password={password}")
    except ValueError:
        log.exception("could not save the mandate")
    written = json_logs.text
    for secret in (password, "Portail-2026!", token, cookie, IBAN, IBAN.lower(), "FR76 3000 4008",
                   "header-secret-0001", "header-secret-0002", "header-secret-0003", "tok-0004"):
        assert secret not in written, secret
        assert secret not in caplog.text and secret not in "\n".join(r.getMessage() for r in caplog.records)
    lines = json_logs.lines()
    assert any(line["message"] == "RIB refusé : ****7879" for line in lines)  # masked to its last 4
    extra = next(line for line in lines if line["message"] == "reset link sent")
    assert extra["password"] == extra["reset_token"] == "[redacted]" and extra["rib"] == "****7879"
    assert extra["headers"] == {"Cookie": "[redacted]", "X-Ok": "fine"}
    assert "'username': ['x']" in written  # what is not secret stays readable
    assert "ValueError: bad IBAN ****7879 for password=[redacted]" in written


def test_scrubbing_leaves_ordinary_text_alone():
    for text in ("GET /compte/activer/<token> 302 3.1 ms", "direct debit file EL20261125ABCD (2026-12 day 7)",
                 "job deliver_mail failed", "order EL-MATRIX-000001 paid", "request D2611-123456 resolved"):
        assert observability.scrub_text(text) == text


# --- logging settings -------------------------------------------------------------------------------------------

def test_logging_is_configured_once_per_process(tmp_path):
    for _ in range(2):
        create_app(TestingConfig(), INSTANCE_DIR=tmp_path, SQLALCHEMY_DATABASE_URI="sqlite://")
    assert sum(isinstance(h, observability.PortalLogHandler) for h in logging.getLogger().handlers) == 1
    assert flask_default_handler_absent()


def flask_default_handler_absent() -> bool:
    from flask.logging import default_handler

    return default_handler not in logging.getLogger("app").handlers


def test_log_format_and_level_settings():
    assert observability.log_format({"ENV_NAME": "production"}) == "json"
    assert observability.log_format({"ENV_NAME": "development"}) == "text"
    assert observability.log_format({"ENV_NAME": "testing", "LOG_FORMAT": "JSON"}) == "json"
    assert observability.log_format({"ENV_NAME": TestingConfig.ENV_NAME, "LOG_FORMAT": TestingConfig.LOG_FORMAT}) \
        == "text"
    assert observability.log_level({"LOG_LEVEL": "warning"}) == logging.WARNING
    assert observability.log_level({}) == logging.INFO
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        observability.log_format({"LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        observability.log_level({"LOG_LEVEL": "chatty"})


@pytest.mark.parametrize("setting, value", [("METRICS_TOKEN", "short"), ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,lan"),
                                            ("LOG_FORMAT", "yaml")])
def test_bad_observability_settings_stop_the_start(tmp_path, setting, value):
    with pytest.raises(ConfigError, match=setting):
        create_app(TestingConfig(), INSTANCE_DIR=tmp_path, SQLALCHEMY_DATABASE_URI="sqlite://", **{setting: value})


# --- health -----------------------------------------------------------------------------------------------------

def test_live_answers_without_the_database(tmp_path):
    broken = create_app(TestingConfig(), INSTANCE_DIR=tmp_path,
                        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
    client = broken.test_client()
    response = client.get("/health/live")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and "database" in ready.json["failing"]
    assert ready.json["checks"]["database"] == {"status": "fail", "reason": "unreachable"}
    assert "nobody" not in ready.get_data(as_text=True) and "127.0.0.1" not in ready.get_data(as_text=True)


def test_ready_reports_each_check(app, demo):
    response = app.test_client().get("/health/ready")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "ok" and "failing" not in body
    checks = body["checks"]
    assert set(checks) == {"database", "files", "pdf", "scheduler", "mail_queue"}
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok", "files": "ok", "pdf": "ok", "scheduler": "skipped", "mail_queue": "ok"}
    assert isinstance(checks["database"]["latency_ms"], (int, float))
    assert checks["mail_queue"]["max_age_seconds"] == 1800
    text = response.get_data(as_text=True)
    assert "@" not in text and str(app.config["FILES_DIR"]) not in text  # no personal data, no path
    assert not list(Path(app.config["FILES_DIR"]).glob(".ready-*"))  # the probe file is gone
    assert response.headers["Cache-Control"] == "no-store"


def test_ready_fails_naming_files_when_files_dir_is_not_writable(app, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file-not-a-folder"
    blocker.write_text("x")
    monkeypatch.setitem(app.config, "FILES_DIR", blocker / "files")
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert response.json["status"] == "fail" and response.json["failing"] == ["files"]
    assert response.json["checks"]["files"] == {"status": "fail", "reason": "not writable"}
    assert str(tmp_path) not in response.get_data(as_text=True)


def add_run(app, name: str, age: timedelta, status=JobStatus.SUCCEEDED, items: int = 0, duration=timedelta(seconds=2)):
    with app.app_context():
        finished = utcnow() - age
        db.session.add(JobRun(job_name=name, started_at=finished - duration, finished_at=finished, status=status,
                              items=items, errors=int(status == JobStatus.FAILED)))
        db.session.commit()


def test_ready_checks_the_scheduler_heartbeat_when_asked(app, monkeypatch):
    client = app.test_client()
    assert client.get("/health/ready").json["checks"]["scheduler"] == {"status": "skipped"}  # tests: off
    monkeypatch.setitem(app.config, "READY_REQUIRES_SCHEDULER", True)
    response = client.get("/health/ready")
    assert response.status_code == 503 and response.json["failing"] == ["scheduler"]
    assert response.json["checks"]["scheduler"]["reason"] == "no run"
    add_run(app, "deliver_mail", timedelta(minutes=9))
    response = client.get("/health/ready")
    assert response.status_code == 503 and response.json["failing"] == ["scheduler"]
    scheduler = response.json["checks"]["scheduler"]
    assert scheduler["status"] == "fail" and scheduler["reason"] == "heartbeat too old"
    assert 540 <= scheduler["last_run_age_seconds"] < 600 and scheduler["max_age_seconds"] == 300
    add_run(app, "deliver_mail", timedelta(seconds=30), status=JobStatus.FAILED)  # a failed run is still a beat
    response = client.get("/health/ready")
    assert response.status_code == 200 and response.json["checks"]["scheduler"]["status"] == "ok"


def test_the_heartbeat_job_is_a_scheduled_job_and_production_requires_it(app):
    from app.scheduler import jobs

    with app.app_context():
        assert probes.HEARTBEAT_JOB in {job.name for job in jobs()}
    assert probes.requires_scheduler({"ENV_NAME": "production", "READY_REQUIRES_SCHEDULER": None})
    assert not probes.requires_scheduler({"ENV_NAME": "production", "READY_REQUIRES_SCHEDULER": "0"})
    assert not probes.requires_scheduler({"ENV_NAME": "development", "READY_REQUIRES_SCHEDULER": None})


def test_ready_fails_on_a_mail_queue_that_does_not_move(app, monkeypatch):
    with app.app_context():
        db.session.add(OutgoingMail(recipient="someone@example.org", subject="s", text_body="t", html_body="h",
                                    created_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503 and response.json["failing"] == ["mail_queue"]
    queue = response.json["checks"]["mail_queue"]
    assert queue["pending"] == 1 and queue["oldest_age_seconds"] >= 7200 and queue["reason"] == "oldest mail too old"
    assert "someone" not in response.get_data(as_text=True)
    monkeypatch.setitem(app.config, "READY_MAIL_QUEUE_MAX_AGE_MINUTES", 0)  # 0: numbers only, never a failure
    assert app.test_client().get("/health/ready").status_code == 200


def test_the_pdf_engine_is_asked_once_in_a_while(app, monkeypatch):
    monkeypatch.setattr(probes, "_pdf_checks", {})
    calls = []
    answers = probes._pdf_engine_answers
    monkeypatch.setattr(probes, "_pdf_engine_answers", lambda binary: calls.append(binary) or answers(binary))
    client = app.test_client()
    for _ in range(3):
        assert client.get("/health/ready").json["checks"]["pdf"]["status"] == "ok"
    assert len(calls) == 1
    monkeypatch.setitem(app.config, "WKHTMLTOPDF", "/nonexistent/wkhtmltopdf")
    response = client.get("/health/ready")
    assert response.status_code == 503 and response.json["failing"] == ["pdf"]
    assert response.json["checks"]["pdf"]["reason"] == "does not answer"


def test_probes_ignore_rate_limits_csrf_and_login(tmp_path):
    limited = make_app(f"sqlite:///{tmp_path / 'limits.db'}", tmp_path, RATELIMIT_ENABLED=True,
                       RATELIMIT_DEFAULT="2 per minute")
    client = limited.test_client()
    assert [client.get("/compte/conditions").status_code for _ in range(3)][-1] == 429  # the default limit bites
    for path in ("/health/live", "/health/ready", "/metrics"):
        assert {client.get(path).status_code for _ in range(5)} == {200}, path
    assert client.post("/health/live").status_code == 405  # GET only: nothing for CSRF to protect


# --- metrics ----------------------------------------------------------------------------------------------------

def test_metrics_is_a_404_from_elsewhere(app, monkeypatch):
    client = app.test_client()
    refused = client.get("/metrics", environ_base=ELSEWHERE)
    assert refused.status_code == 404 and "Page introuvable" in refused.get_data(as_text=True)
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    # through a proxy nobody declared (PROXY_FIX_HOPS 0), the loopback address proves nothing
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer "):
        assert client.get("/metrics", environ_base=ELSEWHERE, headers={"Authorization": header}).status_code == 404
    allowed = client.get("/metrics", environ_base=ELSEWHERE, headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200 and allowed.content_type.startswith("text/plain")
    monkeypatch.setitem(app.config, "METRICS_ALLOWED_NETWORKS", "203.0.113.0/24")
    assert client.get("/metrics", environ_base=ELSEWHERE).status_code == 200
    assert client.get("/metrics").status_code == 404
    monkeypatch.setitem(app.config, "METRICS_ALLOWED_NETWORKS", "none")
    assert client.get("/metrics", environ_base=ELSEWHERE).status_code == 404


def sample(text: str, name: str, **labels) -> float | None:
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or "")) == labels:
            return float(match.group(2))
    return None


def test_metrics_count_requests_jobs_mail_and_payments(app, client_for):
    tenant = client_for("locataire@example.org")
    assert tenant.get("/paiement/").status_code == 200
    tenant.get("/nulle-part/FR7630004008190001234567879")
    add_run(app, "deliver_mail", timedelta(minutes=3), items=3)
    add_run(app, "direct_debits", timedelta(hours=2), items=12, duration=timedelta(seconds=40))
    add_run(app, "direct_debits", timedelta(minutes=1), status=JobStatus.FAILED)
    with app.app_context():
        from app.models import OutgoingMail

        db.session.add(OutgoingMail(recipient="x@example.org", subject="s", text_body="t", html_body="h",
                                    created_at=utcnow() - timedelta(hours=2)))  # waiting for two hours
        db.session.commit()
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert sample(text, "http_requests_total", method="GET", endpoint="TenantPaymentView.index", status="200") >= 1
    assert sample(text, "http_requests_total", method="GET", endpoint="unmatched", status="404") >= 1
    assert sample(text, "http_request_duration_seconds_count", endpoint="TenantPaymentView.index") >= 1
    assert 'endpoint="/' not in text  # the endpoint's name, never the URL
    assert sample(text, "portal_database_up") == 1
    assert sample(text, "portal_job_last_items", job="deliver_mail") == 3
    assert sample(text, "portal_job_last_errors", job="deliver_mail") == 0
    assert sample(text, "portal_job_last_errors", job="direct_debits") == 1  # the newest run failed
    assert sample(text, "portal_job_last_duration_seconds", job="direct_debits") == 2
    last_success = sample(text, "portal_job_last_success_timestamp_seconds", job="direct_debits")
    assert abs(last_success - (utcnow() - timedelta(hours=2)).timestamp()) < 60  # the older, successful run
    assert sample(text, "portal_job_last_success_timestamp_seconds", job="call_rents") is None  # never ran
    assert sample(text, "portal_mail_queue_pending") == 1
    assert 7200 <= sample(text, "portal_mail_queue_oldest_age_seconds") < 7200 + 600
    with app.app_context():
        from app.models import CollectionStatus, DirectDebitCollection, PaymentTransaction

        paid = db.session.scalar(sa.select(sa.func.count()).select_from(PaymentTransaction)
                                 .where(PaymentTransaction.notified_at.is_not(None)))
        rejected = db.session.scalar(sa.select(sa.func.count()).select_from(DirectDebitCollection)
                                     .where(DirectDebitCollection.status == CollectionStatus.REJECTED))
    assert paid > 0 and sample(text, "portal_card_payments_notified_total") == paid  # the demo's card payments
    assert sample(text, "portal_card_payments", status="paid") is not None
    assert sample(text, "portal_direct_debit_rejects_total") == rejected
    assert sample(text, "portal_direct_debits", status="rejected") == rejected
    # nothing personal: no e-mail address, no IBAN
    assert "@" not in text and "example.org" not in text
    assert not observability.IBAN_RE.search(text) and "FR76" not in text


def test_metrics_survive_a_database_that_does_not_answer(tmp_path):
    broken = create_app(TestingConfig(), INSTANCE_DIR=tmp_path,
                        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = broken.test_client().get("/metrics")
    assert response.status_code == 200
    assert sample(response.get_data(as_text=True), "portal_database_up") == 0


MULTIPROCESS_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tests.conftest import make_app

    tmp = Path(sys.argv[1])
    app = make_app(f"sqlite:///{tmp / 'multi.db'}", tmp)
    client = app.test_client()
    for _ in range(int(sys.argv[2])):
        assert client.get("/health/live").status_code == 200
    if sys.argv[3] == "scrape":
        sys.stdout.write(client.get("/metrics").get_data(as_text=True))
""")


def test_multiprocess_mode_sums_every_worker(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, one scrape reports the requests of every process, even one that exited."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "APP_ENV": "testing"}

    def worker(requests: int, scrape: bool) -> str:
        done = subprocess.run([sys.executable, "-c", MULTIPROCESS_SCRIPT, str(tmp_path), str(requests),
                               "scrape" if scrape else "-"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    worker(3, scrape=False)
    text = worker(2, scrape=True)
    assert sample(text, "http_requests_total", method="GET", endpoint="probes.live", status="200") == 5
    assert "process_cpu_seconds_total" not in text  # per-process numbers left out in this mode
    assert sample(text, "portal_database_up") == 1
