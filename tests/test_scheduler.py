"""The scheduler records every run, runs once, and a standby takes over when it dies."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger

from app.extensions import db
from app.models import JobRun, JobStatus, utcnow
from app.scheduler import ADVISORY_LOCK_KEY, Job, SchedulerLock, run_job

ROOT = Path(__file__).resolve().parent.parent


def test_runs_are_recorded_with_items_and_failures(app):
    ok = run_job(app, Job("count", CronTrigger(hour=1), lambda: 42))
    broken = run_job(app, Job("broken", CronTrigger(hour=1), lambda: 1 / 0))
    with app.app_context():
        runs = {run.job_name: run for run in db.session.query(JobRun)}
        assert runs["count"].status is JobStatus.SUCCEEDED and runs["count"].items == 42
        assert runs["count"].finished_at >= runs["count"].started_at
        assert runs["broken"].status is JobStatus.FAILED and "ZeroDivisionError" in runs["broken"].message
    assert ok != broken


def test_only_one_scheduler_holds_the_lock(app):
    first, second = SchedulerLock(app), SchedulerLock(app)
    assert first.acquire() is True
    assert second.acquire() is False
    first.release()


def test_a_released_lock_is_taken_by_the_next_scheduler_and_held_until_then(app):
    first, second = SchedulerLock(app), SchedulerLock(app)
    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    first.release()
    assert not first.held()
    assert second.acquire() and second.held()
    second.release()


# --- a standby takes over (PostgreSQL: an advisory lock every machine sees; SQLite: a file lock on one machine) --------

def _scheduler(app, tmp_path, name: str):
    """`flask --app run scheduler` in its own process, on the test database, checking its lock every 0.3 s (on
    SQLite the lock is a file of the shared instance folder: one machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "APP_ENV"))}
    env.update(APP_ENV="development", DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               INSTANCE_DIR=str(tmp_path), FILES_DIR=str(tmp_path / "files"),
               MAIL_OUTBOX_DIR=str(tmp_path / name / "outbox"), SCHEDULER_LOCK_RETRY_SECONDS="0.3",
               PYTHONUNBUFFERED="1")
    return watch(subprocess.Popen([sys.executable, "-m", "flask", "--app", "run", "scheduler"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))


def watch(process: subprocess.Popen) -> subprocess.Popen:
    """Read `process`'s output on a thread, line by line, into `process.lines` (a queue): select() on a pipe says
    nothing of the lines already in Python's read buffer, which made a wait miss a line that had come."""
    process.lines = queue.Queue()

    def read():
        for line in process.stdout:
            process.lines.put(line)
        process.lines.put(None)  # the end of the output: the process exited

    threading.Thread(target=read, daemon=True).start()
    return process


def _wait_for(process, text: str, timeout: float = 60) -> list[str]:
    """The lines `process` printed until one holds `text` (fails past `timeout` seconds or if it exits)."""
    lines, deadline = [], time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = process.lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not printed; got {lines}")


def test_a_standby_scheduler_takes_over_when_the_first_is_killed(app, tmp_path):
    first = _scheduler(app, tmp_path, "a")
    second = None
    try:
        _wait_for(first, "Scheduler running")
        second = _scheduler(app, tmp_path, "b")
        _wait_for(second, "standing by")
        with app.app_context():  # a job the first was running when it died
            interrupted = JobRun(job_name="deliver_mail", started_at=utcnow(), status=JobStatus.RUNNING)
            db.session.add(interrupted)
            db.session.commit()
            run_id = interrupted.id
        time.sleep(1)  # several lock checks: the standby still waits while the first lives
        assert second.poll() is None
        with app.app_context():
            assert db.session.get(JobRun, run_id).status is JobStatus.RUNNING
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        _wait_for(second, "Scheduler running")
        with app.app_context():
            run = db.session.get(JobRun, run_id)
            assert run.status is JobStatus.FAILED and run.message.startswith("interrupted")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.mark.parametrize("app", ["postgresql"], indirect=True)  # a file lock is lost only with its process
def test_a_scheduler_that_loses_its_lock_stops_at_once(app, tmp_path):
    """PostgreSQL ended its session (a restart, an administrator): the lock is gone, another may take it."""
    process = _scheduler(app, tmp_path, "a")
    try:
        _wait_for(process, "Scheduler running")
        with app.app_context():
            ended = db.session.scalar(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key"),
                {"key": ADVISORY_LOCK_KEY})
            db.session.commit()
        assert ended == 1
        _wait_for(process, "the scheduler lock was lost")
        assert process.wait(10) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_service_manager_s_sigterm_stops_the_scheduler_cleanly(app, tmp_path):
    process = _scheduler(app, tmp_path, "a")
    try:
        _wait_for(process, "Scheduler running")
        process.send_signal(signal.SIGTERM)
        _wait_for(process, "Scheduler stopped.")
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
