"""Several web nodes and two schedulers sharing PostgreSQL, Redis and one file store (issue 13, point 2).

Two gunicorn nodes (gunicorn.conf.py, two workers each) on two loopback ports, as behind a reverse proxy
(PROXY_FIX_HOPS=1: each test gives its client its own address in X-Forwarded-For), one PostgreSQL database, one Redis
server from Debian's package for the rate limits, one files folder; then two `flask scheduler` processes. What a
landlord running two machines needs to hold:
- a login on node A is a session on node B;
- the login rate limit is counted across both nodes (memory storage gave each worker its own count: 38 attempts
  for a limit of 10);
- a file uploaded on A is downloaded from B;
- a card payment started on A, notified by the bank on B (and again, as the bank retries) is credited once;
- one scheduler runs, the other stands by, takes over when the first is killed, and no job runs twice at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests
import sqlalchemy as sa

from app.extensions import db
from app.models import Document, Household, JobRun, LedgerEntry, PaymentStatus, PaymentTransaction, utcnow
from app.services.demo import client_number, seed_demo
from tests.conftest import PASSWORD, _free_port, make_app
from tests.samples import pdf_bytes
from tests.test_payments import notification
from tests.test_scheduler import _wait_for, watch

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "multinode-secret-key-shared-by-every-node-0123456789"


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited with {process.returncode}: {process.log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or its workers still starting
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    folder, port = tmp_path_factory.mktemp("redis"), _free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        else:
            raise AssertionError("redis-server did not answer")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="module")
def nodes(postgres_url, redis_url, tmp_path_factory):
    """The demo landlord in a database of its own, served by two gunicorn nodes."""
    base, name = postgres_url.rsplit("/", 1)
    url = f"{base}/espace_multinode"
    admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("DROP DATABASE IF EXISTS espace_multinode"))
        connection.execute(sa.text("CREATE DATABASE espace_multinode"))
    tmp = tmp_path_factory.mktemp("multinode")
    application = make_app(url, tmp)  # its files in tmp/files, like the nodes'
    with application.app_context():
        seed_demo(6, echo=lambda *_: None)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("APP_ENV", "SECRET_KEY"))}
    env.update(APP_ENV="development", SECRET_KEY=SECRET, DATABASE_URL=url, RATELIMIT_STORAGE_URI=redis_url,
               FILES_DIR=str(tmp / "files"), MAIL_OUTBOX_DIR=str(tmp / "outbox"), PROXY_FIX_HOPS="1",
               AUTH_RATE_LIMIT="10 per 5 minute", SCHEDULER_ENABLED="0", WEB_CONCURRENCY="2", WEB_THREADS="2",
               PYTHONUNBUFFERED="1")
    processes, urls = [], []
    try:
        for node in ("a", "b"):
            port = _free_port()
            node_env = dict(env, PORT=str(port), INSTANCE_DIR=str(tmp / node),
                            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
            log = open(tmp / f"{node}.log", "w")  # a file, not a pipe nobody reads (a full pipe blocks gunicorn)
            processes.append(subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "run:app"],
                                              cwd=ROOT, env=node_env, stdout=log, stderr=subprocess.STDOUT))
            processes[-1].log_path = tmp / f"{node}.log"
            urls.append(f"http://127.0.0.1:{port}")
        for url_, process in zip(urls, processes):
            _wait_until_up(url_, process)
        application.config["nodes"] = urls
        application.config["node_env"] = env
        yield application
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)
        with application.app_context():
            db.engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text("DROP DATABASE IF EXISTS espace_multinode"))
        admin.dispose()


class Browser(requests.Session):
    """A client behind the reverse proxy, from the address `address`."""

    def __init__(self, address: str):
        super().__init__()
        self.headers["X-Forwarded-For"] = address

    def csrf(self, url: str) -> str:
        import re

        page = self.get(url).text
        return re.search(r'name="(?:[\w-]+-)?csrf_token"[^>]*value="([^"]+)"', page).group(1)

    def login(self, node: str, email: str, password: str = PASSWORD) -> requests.Response:
        return self.post(f"{node}/login/", allow_redirects=False, data={
            "username": email, "password": password, "csrf_token": self.csrf(f"{node}/login/")})


def test_a_login_on_one_node_is_a_session_on_the_other(nodes):
    a, b = nodes.config["nodes"]
    tenant = Browser("198.51.100.1")
    assert tenant.login(a, "locataire@example.org").status_code == 302
    home = tenant.get(f"{b}/", allow_redirects=False)
    assert home.status_code == 200 and "Bonjour Léa Martin" in home.text
    tenant.post(f"{b}/logout/", data={"csrf_token": tenant.csrf(f"{b}/logout/")})  # ended on B...
    assert tenant.get(f"{a}/", allow_redirects=False).status_code == 302  # ...is ended on A


def test_the_login_rate_limit_is_counted_across_both_nodes(nodes):
    a, b = nodes.config["nodes"]
    stranger = Browser("203.0.113.7")
    answers = [stranger.login(node, "personne@example.org", "mauvais").status_code
               for node in (a, b) * 5]  # ten failures, five on each node
    assert answers == [200] * 10
    assert stranger.login(a, "personne@example.org", "mauvais").status_code == 429
    assert stranger.login(b, "personne@example.org", "mauvais").status_code == 429
    # another address behind the same proxy is not held back
    assert Browser("203.0.113.8").login(b, "personne@example.org", "mauvais").status_code == 200


def test_an_account_locked_by_failures_on_both_nodes_is_locked_on_both(nodes):
    """The per-account throttle (5 failures in 15 minutes), from five addresses, across the two nodes."""
    a, b = nodes.config["nodes"]
    for attempt, node in enumerate((a, b, a, b, a)):
        assert Browser(f"192.0.2.{attempt + 1}").login(node, "agence@example.org", "mauvais").status_code == 200
    for node in (a, b):  # the right password, from yet another address: refused while the lock lasts
        refused = Browser("192.0.2.99").login(node, "agence@example.org")
        assert refused.status_code == 200 and "Réessayez" in refused.text, refused.text[:500]


def test_a_file_uploaded_on_one_node_is_downloaded_from_the_other(nodes):
    a, b = nodes.config["nodes"]
    with nodes.app_context():
        household_id = db.session.scalar(sa.select(Household.id).where(Household.client_number == client_number(0)))
    staff = Browser("198.51.100.2")
    assert staff.login(a, "gestionnaire@example.org").status_code == 302
    page = f"{a}/agence/foyers/{household_id}"
    response = staff.post(f"{page}/document", allow_redirects=False, data={
        "csrf_token": staff.csrf(page), "document-title": "Courrier multi-nœuds", "document-lease": "",
        "document-confirm": "y"}, files={"document-file": ("courrier.pdf", pdf_bytes(), "application/pdf")})
    assert response.status_code == 302
    with nodes.app_context():
        document_id = db.session.scalar(sa.select(Document.id).where(Document.title == "Courrier multi-nœuds"))
    tenant = Browser("198.51.100.3")
    assert tenant.login(b, "locataire@example.org").status_code == 302
    download = tenant.get(f"{b}/documents/{document_id}")
    assert download.status_code == 200 and download.content == pdf_bytes()


def test_a_payment_started_on_one_node_and_notified_on_the_other_is_credited_once(nodes):
    a, b = nodes.config["nodes"]
    tenant = Browser("198.51.100.4")
    assert tenant.login(a, "retard@example.org").status_code == 302
    started = tenant.post(f"{a}/paiement/payer", data={
        "csrf_token": tenant.csrf(f"{a}/paiement/"), "amount": "75", "lease": ""})
    assert started.status_code == 200
    with nodes.app_context():
        transaction = db.session.scalar(sa.select(PaymentTransaction).where(
            PaymentTransaction.status == PaymentStatus.CREATED).order_by(PaymentTransaction.id.desc()))
        db.session.expunge(transaction)
    fields = notification(transaction)
    start = threading.Barrier(2)

    def notify(node, answers):
        start.wait()
        answers.append(requests.post(f"{node}/payments/systempay/ipn", data=fields).status_code)

    answers = []  # the same notification on both nodes at the same moment, then a retry of the bank's on B
    threads = [threading.Thread(target=notify, args=(node, answers)) for node in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    answers.append(requests.post(f"{b}/payments/systempay/ipn", data=fields).status_code)
    assert answers == [200, 200, 200]
    with nodes.app_context():
        assert db.session.get(PaymentTransaction, transaction.id).status is PaymentStatus.PAID
        credited = db.session.scalars(sa.select(LedgerEntry).where(
            LedgerEntry.external_ref == f"systempay:{fields['vads_trans_uuid']}")).all()
        assert len(credited) == 1 and credited[0].amount == 75


def _scheduler(nodes, name: str) -> subprocess.Popen:
    env = dict(nodes.config["node_env"], INSTANCE_DIR=str(Path(nodes.config["INSTANCE_DIR"]) / name),
               SCHEDULER_LOCK_RETRY_SECONDS="0.5", MAIL_DELIVERY_INTERVAL_SECONDS="1")
    return watch(subprocess.Popen([sys.executable, "-m", "flask", "--app", "run", "scheduler"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))


def _mail_runs(nodes) -> list[JobRun]:
    with nodes.app_context():
        return db.session.scalars(sa.select(JobRun).where(JobRun.job_name == "deliver_mail")
                                  .order_by(JobRun.started_at)).all()


def _until_more_runs(nodes, count: int, timeout: float = 60) -> list[JobRun]:
    """The mail job's runs, once there are more than `count` (the job runs every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _mail_runs(nodes)
        if len(runs) > count:
            return runs
        time.sleep(0.3)
    raise AssertionError(f"the mail job did not run again within {timeout} s")


def test_one_scheduler_runs_the_other_takes_over_and_no_job_runs_twice(nodes):
    first = _scheduler(nodes, "scheduler-a")
    second = None
    try:
        _wait_for(first, "Scheduler running")
        second = _scheduler(nodes, "scheduler-b")
        _wait_for(second, "standing by")
        before_kill = _until_more_runs(nodes, len(_mail_runs(nodes)) + 2)  # the first sends the queue; B waits
        assert second.poll() is None
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = utcnow()
        _wait_for(second, "Scheduler running")
        runs = _until_more_runs(nodes, len(before_kill) + 2)  # now the second sends it
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
    assert any(run.started_at > killed_at for run in runs)  # the standby took the work over
    finished = [run for run in runs if run.finished_at is not None]
    for earlier, later in zip(finished, finished[1:]):
        assert later.started_at >= earlier.finished_at, (earlier.id, later.id)  # never two at once
