"""Scheduled jobs: one table (name, trigger, function), one scheduler process, every run recorded in `job_run`.

APScheduler 3 cannot share a job store between processes, so exactly one scheduler may run. It takes a lock
first: a PostgreSQL advisory lock held on its own connection (every machine sees it), or a file lock next to the
SQLite database (one machine). A second scheduler, started on another machine as a standby, waits for the lock and
takes over within `SCHEDULER_LOCK_RETRY_SECONDS` when the first one dies (`kill -9` included: the database ends a
dead process's session, and its advisory lock with it). The holder checks its lock connection as often; if it is
lost (the database restarted), it stops scheduling at once and exits, so that two never run together. Runs left
RUNNING by a killed scheduler are marked FAILED (« interrupted ») by the one that takes over; each job is
idempotent in the database, so the next run finishes the work.
"""

from __future__ import annotations

import fcntl
import logging
import time
from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from app.extensions import db
from app.models import JobRun, JobStatus, utcnow

log = logging.getLogger(__name__)
ADVISORY_LOCK_KEY = 0x45_53_50_41  # "ESPA"


@dataclass(frozen=True)
class Job:
    name: str
    trigger: BaseTrigger
    func: Callable[[], int]  # returns the number of items processed


def jobs() -> list[Job]:
    """The table of jobs. Each function is a service call, idempotent in the database."""
    from flask import current_app

    from app.mail import deliver_pending
    from app.services import accounts, direct_debits, insurance, payments, rent_calls, sepa

    config = current_app.config
    return [
        Job("call_rents", CronTrigger(day=config["RENT_CALL_DAY"], hour=config["RENT_CALL_HOUR"]),
            lambda: rent_calls.call_rents(rent_calls.next_period(utcnow().date()), utcnow())
            + direct_debits.prenotify(utcnow().date(), utcnow())),
        Job("render_card_receipts", CronTrigger(minute="*/2"), payments.render_card_receipts),
        Job("direct_debits", CronTrigger(hour=6, minute=30),
            lambda: direct_debits.daily(utcnow().date(), utcnow())),
        Job("lapse_unused_mandates", CronTrigger(day=1, hour=4), lambda: sepa.lapse_unused(utcnow())),
        Job("insurance_reminders", CronTrigger(hour=8, minute=0), lambda: insurance.send_reminders(utcnow())),
        Job("deliver_mail", IntervalTrigger(seconds=config["MAIL_DELIVERY_INTERVAL_SECONDS"]), deliver_pending),
        Job("deactivate_moved_out", CronTrigger(hour=2, minute=30), lambda: accounts.deactivate_moved_out(utcnow())),
        Job("purge_expired_links", CronTrigger(hour=3, minute=0), lambda: accounts.purge_expired(utcnow())),
        Job("purge_ended_sessions", CronTrigger(hour=3, minute=15), lambda: accounts.purge_sessions(utcnow())),
    ]


def run_job(app: Flask, job: Job) -> int:
    """Run one job inside an app context and record the run, whatever happens. Returns the run's id."""
    with app.app_context():
        run = JobRun(job_name=job.name, started_at=utcnow(), status=JobStatus.RUNNING)
        db.session.add(run)
        db.session.commit()
        run_id = run.id
        try:
            items = job.func()
        except Exception as exc:  # recorded for staff, then logged with its traceback
            db.session.rollback()
            run = db.session.get(JobRun, run_id)
            run.status, run.errors, run.message = JobStatus.FAILED, 1, f"{type(exc).__name__}: {exc}"[:2000]
            log.exception("job %s failed", job.name)
        else:
            run = db.session.get(JobRun, run_id)
            run.status, run.items = JobStatus.SUCCEEDED, items or 0
        run.finished_at = utcnow()
        db.session.commit()
        return run_id


class SchedulerLock:
    """Held for the life of the scheduler process."""

    def __init__(self, app: Flask):
        self.app = app
        self._connection = None
        self._file = None

    def acquire(self) -> bool:
        """Take the lock if it is free (never blocks)."""
        with self.app.app_context():
            engine = db.engine
            if engine.dialect.name == "postgresql":
                connection = engine.connect()
                if connection.scalar(sa.select(sa.func.pg_try_advisory_lock(ADVISORY_LOCK_KEY))):
                    connection.commit()  # the lock is the session's; no transaction is kept open with it
                    self._connection = connection
                    return True
                connection.close()
                return False
        path = self.app.config["INSTANCE_DIR"] / "scheduler.lock"
        handle = open(path, "w")  # noqa: SIM115 - kept open for the process lifetime once locked
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def wait(self, retry_seconds: float, announce: Callable[[], None] = lambda: None) -> None:
        """Block until the lock is ours, trying every `retry_seconds`; `announce` is called once if it must wait."""
        if self.acquire():
            return
        announce()
        while not self.acquire():
            time.sleep(retry_seconds)

    def held(self) -> bool:
        """Whether the lock is still ours: the advisory lock lives as long as its database session."""
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        try:
            still = self._connection.scalar(sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND granted AND ((classid::bigint << 32) | objid::bigint) = :key"), {"key": ADVISORY_LOCK_KEY})
            self._connection.commit()
            return bool(still)
        except sa.exc.DBAPIError:
            return False

    def release(self) -> None:
        if self._connection is not None:
            self._connection.invalidate()  # closed for real: back in the pool, its session would keep the lock
            self._connection = None
        if self._file is not None:
            self._file.close()
            self._file = None


def mark_interrupted_runs(app: Flask) -> int:
    """Runs left RUNNING by a scheduler that died: with the lock ours, no other process is running a job."""
    with app.app_context():
        count = db.session.execute(sa.update(JobRun).where(JobRun.status == JobStatus.RUNNING).values(
            status=JobStatus.FAILED, finished_at=utcnow(), errors=1,
            message="interrupted: the scheduler running it stopped")).rowcount
        db.session.commit()
    if count:
        log.warning("%d job run(s) left running by a stopped scheduler marked as failed", count)
    return count


def start_scheduler(app: Flask, lock: SchedulerLock | None = None) -> BackgroundScheduler | None:
    """Schedule the jobs in this process; `lock` is the scheduler lock already taken (else it is tried once)."""
    if lock is None:
        lock = SchedulerLock(app)
        if not lock.acquire():
            log.warning("another scheduler holds the lock: this process schedules nothing")
            return None
    mark_interrupted_runs(app)
    scheduler = BackgroundScheduler(timezone="Europe/Paris")
    with app.app_context():
        table = jobs()
    for job in table:
        scheduler.add_job(run_job, job.trigger, args=[app, job], id=job.name, name=job.name,
                          max_instances=1, coalesce=True, misfire_grace_time=3600)
    scheduler.start()
    app.extensions["scheduler"] = (scheduler, lock)
    log.info("scheduler started with %d jobs", len(scheduler.get_jobs()))
    return scheduler
