"""The scheduler records every run and refuses to start twice."""

from apscheduler.triggers.cron import CronTrigger

from app.extensions import db
from app.models import JobRun, JobStatus
from app.scheduler import Job, SchedulerLock, run_job


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
