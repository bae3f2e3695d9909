"""Failed attempts per key, in the database so every web process sees the same count.

Used per account for logins (`login:<email>`) and per client number for registrations (`register:<number>`).
The per-address limits are Flask-Limiter's (see `app.security`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import Throttle


def locked_until(key: str, now: datetime) -> datetime | None:
    """When the key may be tried again, or None if it may be tried now."""
    row = db.session.scalar(sa.select(Throttle).where(Throttle.key == key))
    if row is not None and row.locked_until is not None and row.locked_until > now:
        return row.locked_until
    return None


def record_failure(key: str, now: datetime, limit: int, window: timedelta, lock: timedelta) -> datetime | None:
    """Count a failure; after `limit` failures within `window`, lock the key for `lock`. Returns the lock's end.

    The key's row is created by `INSERT … ON CONFLICT DO NOTHING` (PostgreSQL and SQLite alike), then locked:
    failures at the same moment for a new key count one each instead of racing on the unique key."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[db.session.get_bind().dialect.name]
    db.session.execute(insert(Throttle).values(key=key, failures=0, window_started_at=now)
                       .on_conflict_do_nothing(index_elements=[Throttle.key]))
    row = db.session.scalar(sa.select(Throttle).where(Throttle.key == key).with_for_update())
    if now - row.window_started_at > window:
        row.failures, row.window_started_at = 0, now
    row.failures += 1
    if row.failures >= limit:
        row.locked_until, row.failures, row.window_started_at = now + lock, 0, now
    db.session.flush()
    return row.locked_until if row.locked_until and row.locked_until > now else None


def clear(key: str) -> None:
    db.session.execute(sa.delete(Throttle).where(Throttle.key == key))


def purge(now: datetime, older_than: timedelta) -> int:
    """Forget keys that have been quiet for a while (the purge job)."""
    cutoff = now - older_than
    result = db.session.execute(sa.delete(Throttle).where(
        Throttle.window_started_at < cutoff, sa.or_(Throttle.locked_until.is_(None), Throttle.locked_until < now)))
    return result.rowcount or 0
