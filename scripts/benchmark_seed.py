"""Benchmark: seed a demo landlord into a throwaway SQLite database, then time a few staff and tenant pages and
count their SQL queries. Prints figures; asserts nothing.

    .venv/bin/python scripts/benchmark_seed.py [households]   (default 2000)
"""

import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.extensions import db  # noqa: E402
from app.models import Household, LedgerEntry  # noqa: E402
from app.services.demo import seed_demo  # noqa: E402
from tests.conftest import login, make_app  # noqa: E402


def main(households: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="espace-bench-"))
    app = make_app(f"sqlite:///{tmp / 'bench.db'}", tmp)
    with app.app_context():
        started = time.perf_counter()
        seed_demo(households, echo=lambda *_: None)
        seconds = time.perf_counter() - started
        entries = db.session.scalar(sa.select(sa.func.count(LedgerEntry.id)))
        household_id = db.session.scalar(sa.select(Household.id).order_by(Household.id))
    print(f"seed-demo --households {households}: {seconds:.1f} s, {entries} ledger entries "
          f"({entries / seconds:.0f} rows/s)")

    queries = []
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    for email, urls in (
        ("gestionnaire@example.org", ["/staffhouseholdview/list/", f"/staffhouseholdview/show/{household_id}",
                                      "/staffledgerentryview/list/", "/staffleaseview/list/"]),
        ("locataire@example.org", ["/"]),
    ):
        client = app.test_client()
        login(client, email)
        for url in urls:
            client.get(url)  # warm up
            queries.clear()
            started = time.perf_counter()
            for _ in range(5):
                response = client.get(url)
            elapsed = (time.perf_counter() - started) / 5 * 1000
            print(f"{url:45} {response.status_code}  {elapsed:6.1f} ms  {len(queries) // 5:3d} queries")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
