"""Benchmark: seed a demo landlord into a throwaway SQLite database, time a few staff and tenant pages and count
their SQL queries, then run one month of direct debit (rent call, pre-notification, the files, settlement) and time
each step. Prints figures; asserts nothing.

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
        household_id, client = db.session.execute(sa.select(Household.id, Household.client_number)
                                                  .order_by(Household.id.desc())).first()
    print(f"seed-demo --households {households}: {seconds:.1f} s, {entries} ledger entries "
          f"({entries / seconds:.0f} rows/s)")

    queries = []
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    for email, urls in (
        ("gestionnaire@example.org", ["/staffhouseholdview/list/", f"/agence/foyers/{household_id}",
                                      "/staffledgerentryview/list/", "/staffleaseview/list/",
                                      # the one-box search: a common name (a list), a client number (one), a street
                                      "/agence/recherche/?q=martin", f"/agence/recherche/?q={client}",
                                      "/agence/recherche/?q=moulin"]),
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
    with app.app_context():
        money_cycle(queries)


def money_cycle(queries: list) -> None:
    """One month of direct debit for every active mandate of the demo landlord, step by step."""
    from datetime import timedelta

    from app.models import DirectDebitMandate, MandateStatus, utcnow
    from app.services import direct_debits, rent_calls
    from app.services.sepa import DEBIT_DAYS

    month = rent_calls.next_period(utcnow().date())
    mandates = db.session.scalar(sa.select(sa.func.count(DirectDebitMandate.id)).where(
        DirectDebitMandate.status == MandateStatus.ACTIVE))
    steps = [
        ("rent call", lambda: rent_calls.call_rents(month, utcnow())),
        ("pre-notification", lambda: direct_debits.prenotify(month - timedelta(days=20), utcnow())),
        ("files (3 debit days)", lambda: sum(
            direct_debits.build_file(f"{month:%Y-%m}", day, month - timedelta(days=10), utcnow()).count
            for day in DEBIT_DAYS)),
        ("settlement", lambda: direct_debits.settle(month + timedelta(days=14), utcnow())),
    ]
    print(f"direct debit, {mandates} active mandates:")
    for name, step in steps:
        queries.clear()
        started = time.perf_counter()
        items = step()
        print(f"  {name:22} {time.perf_counter() - started:6.2f} s  {items:6d} items  {len(queries):5d} queries")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
