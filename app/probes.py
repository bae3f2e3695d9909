"""Probes: `/health/live`, `/health/ready` and `/metrics` (issue 13, point 3). `/health` (app/http.py) stays as it
was for the monitors that already call it.

All three are outside the login, CSRF and rate limits, answer in a few milliseconds and never show personal data:
statuses, counts, ages and durations only, no path, address or exception text (failures are logged instead).

- `/health/live`: the process answers (`{"status": "ok"}`, no database). For a liveness probe: restart on failure.
- `/health/ready`: each check's status and a few numbers; 200 when every check passes, 503 naming the failing
  ones otherwise. Checks: `database` (SELECT 1), `files` (the file store, FILES_DIR or the S3 bucket, takes a
  file: written, read back, deleted), `pdf` (wkhtmltopdf is there and answers `--version`; the answer is kept
  5 minutes, a failure 30 seconds),
  `scheduler` (only when READY_REQUIRES_SCHEDULER, by default in production: the newest finished run of the
  every-minute `deliver_mail` job is at most READY_SCHEDULER_MAX_AGE_MINUTES old) and `mail_queue` (the oldest
  mail waiting to be sent is at most READY_MAIL_QUEUE_MAX_AGE_MINUTES old). The scheduler and mail checks say the
  portal as a whole is unwell, not that this process cannot serve: a load balancer that takes every web process
  out on a 503 should route on `/health/live` (or `/health`) and leave `/health/ready` to monitoring and alerts.
- `/metrics`: Prometheus text, for the networks of METRICS_ALLOWED_NETWORKS (default the loopback) or a request
  carrying `Authorization: Bearer <METRICS_TOKEN>`; anything else gets the portal's ordinary 404, as if nothing
  were there. Behind a reverse proxy on the same machine every request comes from the loopback: either set
  PROXY_FIX_HOPS (the address is then the client's), or rely on this rule: a request with `X-Forwarded-For`,
  `Forwarded` or `X-Real-IP` while PROXY_FIX_HOPS is 0 came through a proxy, so its address proves nothing and
  only the token lets it in.

Metrics:

- `http_requests_total{method, endpoint, status}` and `http_request_duration_seconds{endpoint}` (histogram), by
  Flask endpoint name (`TenantPaymentView.index`, `unmatched` for a URL no route matches), never the raw URL;
  methods outside the usual seven count as `other`.
- Read from the database at each scrape, so every worker gives the same numbers and no multiprocess storage is
  needed: `portal_database_up`; per job of app.scheduler `portal_job_last_success_timestamp_seconds`,
  `portal_job_last_finished_timestamp_seconds`, `portal_job_last_duration_seconds`, `portal_job_last_items`,
  `portal_job_last_errors` (the newest finished run); `portal_mail_queue_pending`,
  `portal_mail_queue_oldest_age_seconds`, `portal_mail_given_up`; `portal_card_payments{status}`,
  `portal_card_payments_notified_total` (notifications received from the bank); `portal_direct_debits{status}`,
  `portal_direct_debit_rejects_total` (collections rejected or returned by the bank).
- Without PROMETHEUS_MULTIPROC_DIR: also prometheus-client's `process_*` metrics of the process that answers.

**Several gunicorn workers.** Each worker counts its own requests, so a scrape answered by one worker would see a
fraction of them. Use prometheus-client's multiprocess mode: set `PROMETHEUS_MULTIPROC_DIR` to an empty directory
the workers can write, in the environment, *before* gunicorn starts (prometheus-client reads it when imported),
and empty it at each start; then each worker writes its counters there and a scrape sums them all. Gunicorn's
config file must tell prometheus-client when a worker exits::

    # gunicorn.conf.py
    from prometheus_client import multiprocess

    def child_exit(server, worker):
        multiprocess.mark_process_dead(worker.pid)

for example `rm -rf /run/espace-metrics && mkdir /run/espace-metrics && PROMETHEUS_MULTIPROC_DIR=/run/espace-metrics
gunicorn -c gunicorn.conf.py -w 4 run:app`. In that mode the `process_*` metrics are left out (they would describe
whichever worker answered).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import shutil
import subprocess
import threading
import time

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from app.extensions import db
from config import ConfigError

log = logging.getLogger(__name__)
bp = Blueprint("probes", __name__)
QUIET_BLUEPRINTS = {"probes", "health"}  # their request lines are DEBUG: a probe every few seconds is noise
HEARTBEAT_JOB = "deliver_mail"  # runs every minute (app.scheduler.jobs)
PDF_CHECK_TTL = 300.0
PDF_FAILURE_TTL = 30.0
MIN_METRICS_TOKEN_LENGTH = 16
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

disable_created_metrics()  # no `*_created` series beside each counter and histogram: nothing here reads them
# Created once per process (tests build many apps; a metric registers once). In multiprocess mode their values live
# in PROMETHEUS_MULTIPROC_DIR.
REQUESTS = Counter("http_requests", "HTTP requests answered, by method, Flask endpoint and status.",
                   ["method", "endpoint", "status"], registry=None)
LATENCY = Histogram("http_request_duration_seconds", "Time to answer a request, by Flask endpoint.", ["endpoint"],
                    registry=None)
PROCESS = ProcessCollector(registry=None)


def observe_request(method: str, endpoint: str, status: int, duration: float) -> None:
    REQUESTS.labels(method if method in METHODS else "other", endpoint, str(status)).inc()
    LATENCY.labels(endpoint).observe(duration)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# --- health -----------------------------------------------------------------------------------------------------

@bp.get("/health/live")
def live():
    return _no_store(jsonify(status="ok"))


@bp.get("/health/ready")
def ready():
    checks = {}
    for name, check in CHECKS:
        try:
            checks[name] = check()
        except Exception:  # a probe always answers; the log has the details
            _rollback()
            log.warning("readiness check %s failed", name, exc_info=True)
            checks[name] = {"status": "fail", "reason": "error"}
    failing = [name for name, result in checks.items() if result["status"] == "fail"]
    body = {"status": "fail" if failing else "ok", "checks": checks}
    if failing:
        body["failing"] = failing
        log.warning("not ready: %s", ", ".join(failing))
    response = jsonify(body)
    response.status_code = 503 if failing else 200
    return _no_store(response)


def _rollback() -> None:
    """End a failed transaction; on a database that is gone, that may fail too."""
    try:
        db.session.rollback()
    except sa.exc.SQLAlchemyError:
        log.debug("rollback failed", exc_info=True)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def check_database() -> dict:
    started = time.perf_counter()
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        _rollback()
        log.warning("readiness: database unreachable", exc_info=True)
        return {"status": "fail", "reason": "unreachable"}
    return {"status": "ok", "latency_ms": _ms(time.perf_counter() - started)}


def check_files() -> dict:
    """The file store (app.filestore: FILES_DIR or the S3 bucket) takes a file: a random one written, read back and
    deleted (named `.part`, which the file rotation and backups skip, should a crash leave it)."""
    from app import filestore

    started = time.perf_counter()
    probe = f".ready-{secrets.token_hex(8)}.part"
    data = secrets.token_bytes(32)
    deleted = False
    try:
        filestore.write_raw(probe, data)
        same = filestore.read_raw(probe) == data
        filestore.delete(probe)
        deleted = True
    except OSError:  # filestore.StorageError too
        log.warning("readiness: the file store is not writable", exc_info=True)
        return {"status": "fail", "reason": "not writable"}
    finally:
        try:
            if not deleted:
                filestore.delete(probe)
        except OSError:
            pass
    if not same:
        return {"status": "fail", "reason": "read back differs"}
    return {"status": "ok", "latency_ms": _ms(time.perf_counter() - started)}


_pdf_lock = threading.Lock()
_pdf_checks: dict[str, tuple[float, bool]] = {}  # binary -> (when checked, answered)


def _pdf_engine_answers(binary: str) -> bool:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, timeout=10, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        log.warning("readiness: wkhtmltopdf does not answer", exc_info=True)
        return False
    if done.returncode != 0 or b"wkhtmltopdf" not in done.stdout.lower():
        log.warning("readiness: wkhtmltopdf --version exited with %s", done.returncode)
        return False
    return True


def check_pdf_engine() -> dict:
    """wkhtmltopdf (the binary app.pdf uses) answers `--version`; run at most every 5 minutes per process."""
    binary = current_app.config.get("WKHTMLTOPDF") or shutil.which("wkhtmltopdf")
    if not binary:
        return {"status": "fail", "reason": "not installed"}
    with _pdf_lock:
        now = time.monotonic()
        checked = _pdf_checks.get(binary)
        if checked is None or now - checked[0] > (PDF_CHECK_TTL if checked[1] else PDF_FAILURE_TTL):
            checked = _pdf_checks[binary] = (now, _pdf_engine_answers(binary))
    result = {"status": "ok" if checked[1] else "fail", "checked_seconds_ago": int(now - checked[0])}
    if not checked[1]:
        result["reason"] = "does not answer"
    return result


def requires_scheduler(config) -> bool:
    value = config.get("READY_REQUIRES_SCHEDULER")
    if value is None:
        return config.get("ENV_NAME") == "production"
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def check_scheduler() -> dict:
    from app.models import JobRun, utcnow

    if not requires_scheduler(current_app.config):
        return {"status": "skipped"}
    max_age = current_app.config["READY_SCHEDULER_MAX_AGE_MINUTES"] * 60
    finished = db.session.scalar(
        sa.select(JobRun.finished_at).where(JobRun.job_name == HEARTBEAT_JOB, JobRun.finished_at.is_not(None))
        .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1))
    if finished is None:
        return {"status": "fail", "reason": "no run", "max_age_seconds": max_age}
    age = max(0, int((utcnow() - finished).total_seconds()))
    result = {"status": "ok" if age <= max_age else "fail", "last_run_age_seconds": age, "max_age_seconds": max_age}
    if age > max_age:
        result["reason"] = "heartbeat too old"
    return result


def mail_queue() -> tuple[int, float, int]:
    """(messages waiting to be sent, age in seconds of the oldest, messages given up)."""
    from app.mail import MAX_ATTEMPTS
    from app.models import OutgoingMail, utcnow

    unsent = OutgoingMail.sent_at.is_(None)
    pending, oldest = db.session.execute(
        sa.select(sa.func.count(OutgoingMail.id), sa.func.min(OutgoingMail.created_at))
        .where(unsent, OutgoingMail.attempts < MAX_ATTEMPTS)).one()
    given_up = db.session.scalar(sa.select(sa.func.count(OutgoingMail.id))
                                 .where(unsent, OutgoingMail.attempts >= MAX_ATTEMPTS))
    age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
    return pending, age, given_up


def check_mail_queue() -> dict:
    pending, age, _ = mail_queue()
    max_age = current_app.config["READY_MAIL_QUEUE_MAX_AGE_MINUTES"] * 60
    too_old = bool(max_age) and age > max_age
    result = {"status": "fail" if too_old else "ok", "pending": pending, "oldest_age_seconds": int(age),
              "max_age_seconds": max_age}
    if too_old:
        result["reason"] = "oldest mail too old"
    return result


CHECKS = (("database", check_database), ("files", check_files), ("pdf", check_pdf_engine),
          ("scheduler", check_scheduler), ("mail_queue", check_mail_queue))


# --- metrics ----------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def parse_networks(value) -> tuple:
    """METRICS_ALLOWED_NETWORKS (a comma-separated string, or a list) as networks; "none" or empty: none."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value or ())
    if [item.lower() for item in items] == ["none"]:
        return ()
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(f"METRICS_ALLOWED_NETWORKS: {item!r} is not a network (e.g. 10.0.0.0/8)") from exc
    return tuple(networks)


def _networks(config) -> tuple:
    value = config.get("METRICS_ALLOWED_NETWORKS")
    return parse_networks(value if isinstance(value, str) or value is None else tuple(value))


def _from_allowed_network() -> bool:
    if not current_app.config.get("PROXY_FIX_HOPS") and any(h in request.headers for h in PROXY_HEADERS):
        return False  # came through a proxy we were not told about: its address is the proxy's
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(current_app.config))


def _has_token() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer" or not given.strip():
        return False
    # hashed first: the comparison takes the same time whatever the length of what was sent
    return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(),
                               hashlib.sha256(token.encode()).digest())


def metrics_allowed() -> bool:
    return _from_allowed_network() or _has_token()


@bp.get("/metrics")
def metrics():
    if not metrics_allowed():
        abort(404)
    response = Response(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
    return _no_store(response)


def scrape_registry() -> CollectorRegistry:
    """What one scrape reports: the request metrics (this process's, or every worker's in multiprocess mode) and
    the database's numbers."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (REQUESTS, LATENCY, PROCESS):
            registry.register(collector)
    registry.register(DatabaseCollector())
    return registry


class DatabaseCollector(Collector):
    """Gauges and counters read from the database when scraped (in the request's app context). A few indexed
    queries: per job the newest finished and the newest successful run (index job_name, started_at), the mail
    queue (index sent_at, attempts), payments and direct debits grouped by status."""

    def collect(self):
        up = GaugeMetricFamily("portal_database_up", "1 when the database answered this scrape's queries.")
        try:
            families = self.families()
        except sa.exc.SQLAlchemyError:
            _rollback()
            log.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def families(self) -> list:
        return [*self.job_families(), *self.mail_families(), *self.payment_families(),
                *self.direct_debit_families()]

    @staticmethod
    def job_families() -> list:
        from app.models import JobRun, JobStatus
        from app.scheduler import jobs

        success = GaugeMetricFamily("portal_job_last_success_timestamp_seconds",
                                    "When the job's newest successful run finished (Unix time).", labels=["job"])
        finished = GaugeMetricFamily("portal_job_last_finished_timestamp_seconds",
                                     "When the job's newest finished run (succeeded or failed) finished.",
                                     labels=["job"])
        duration = GaugeMetricFamily("portal_job_last_duration_seconds", "How long the newest finished run took.",
                                     labels=["job"])
        items = GaugeMetricFamily("portal_job_last_items", "Items the newest finished run processed.",
                                  labels=["job"])
        errors = GaugeMetricFamily("portal_job_last_errors", "Errors of the newest finished run (1: it failed).",
                                   labels=["job"])
        newest_first = (JobRun.started_at.desc(), JobRun.id.desc())
        for name in [job.name for job in jobs()]:
            last = db.session.execute(
                sa.select(JobRun.started_at, JobRun.finished_at, JobRun.items, JobRun.errors)
                .where(JobRun.job_name == name, JobRun.finished_at.is_not(None))
                .order_by(*newest_first).limit(1)).first()
            if last is None:
                continue
            finished.add_metric([name], last.finished_at.timestamp())
            duration.add_metric([name], max(0.0, (last.finished_at - last.started_at).total_seconds()))
            items.add_metric([name], last.items)
            errors.add_metric([name], last.errors)
            succeeded = db.session.scalar(
                sa.select(JobRun.finished_at).where(JobRun.job_name == name, JobRun.status == JobStatus.SUCCEEDED,
                                                    JobRun.finished_at.is_not(None))
                .order_by(*newest_first).limit(1))
            if succeeded is not None:
                success.add_metric([name], succeeded.timestamp())
        return [success, finished, duration, items, errors]

    @staticmethod
    def mail_families() -> list:
        pending, age, given_up = mail_queue()
        return [GaugeMetricFamily("portal_mail_queue_pending", "Mails waiting to be sent.", value=pending),
                GaugeMetricFamily("portal_mail_queue_oldest_age_seconds",
                                  "Age of the oldest mail waiting to be sent (0: none).", value=age),
                GaugeMetricFamily("portal_mail_given_up", "Mails never sent after every attempt.", value=given_up)]

    @staticmethod
    def payment_families() -> list:
        from app.models import PaymentStatus, PaymentTransaction

        rows = db.session.execute(
            sa.select(PaymentTransaction.status, sa.func.count(PaymentTransaction.id),
                      sa.func.count(PaymentTransaction.notified_at))
            .group_by(PaymentTransaction.status)).all()
        by_status = {status: count for status, count, _ in rows}
        card = GaugeMetricFamily("portal_card_payments", "Card payments by status.", labels=["status"])
        for status in PaymentStatus:
            card.add_metric([status.value], by_status.get(status, 0))
        notified = CounterMetricFamily("portal_card_payments_notified",
                                       "Card payments the bank's notification reached.",
                                       value=sum(count for _, _, count in rows))
        return [card, notified]

    @staticmethod
    def direct_debit_families() -> list:
        from app.models import CollectionStatus, DirectDebitCollection

        by_status = dict(db.session.execute(
            sa.select(DirectDebitCollection.status, sa.func.count(DirectDebitCollection.id))
            .group_by(DirectDebitCollection.status)).all())
        collections = GaugeMetricFamily("portal_direct_debits", "Direct-debit collections by status.",
                                        labels=["status"])
        for status in CollectionStatus:
            collections.add_metric([status.value], by_status.get(status, 0))
        rejects = CounterMetricFamily("portal_direct_debit_rejects",
                                      "Direct-debit collections rejected or returned by the bank.",
                                      value=by_status.get(CollectionStatus.REJECTED, 0))
        return [collections, rejects]


# --- wiring -----------------------------------------------------------------------------------------------------

def _exempt_from_rate_limits():
    """Flask-Limiter is created by Flask-AppBuilder after `init_app`: exempt the probes on the first request
    (this hook runs before the limiter's own)."""
    state = current_app.extensions["probes"]
    if not state["limits_exempted"]:
        for limiter in current_app.extensions.get("limiter", ()):
            limiter.exempt(bp)
        state["limits_exempted"] = True


def init_app(app: Flask) -> None:
    _networks(app.config)  # a malformed METRICS_ALLOWED_NETWORKS stops the start, naming the variable
    token = app.config.get("METRICS_TOKEN")
    if token and len(token) < MIN_METRICS_TOKEN_LENGTH:
        raise ConfigError(f"METRICS_TOKEN is too short: at least {MIN_METRICS_TOKEN_LENGTH} characters are needed")
    app.extensions["probes"] = {"limits_exempted": False}
    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)
    app.before_request(_exempt_from_rate_limits)
