"""The demo landlord: deterministic, idempotent, growable, with the four documented accounts."""

from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from app.extensions import db
from app.models import (
    DirectDebitMandate, Household, Lease, LedgerEntry, MandateStatus, TenantAccount, UnitKind,
)
from app.services import ledger
from app.services.demo import client_number, seed_demo
from tests.conftest import login

TODAY = date(2026, 11, 22)


def _snapshot():
    return {
        "households": db.session.scalar(sa.select(sa.func.count(Household.id))),
        "leases": db.session.scalar(sa.select(sa.func.count(Lease.id))),
        "entries": db.session.scalar(sa.select(sa.func.count(LedgerEntry.id))),
        "total": db.session.scalar(sa.select(sa.func.sum(LedgerEntry.amount))),
        "names": db.session.execute(sa.select(Household.client_number, Household.signatory_last_name)
                                    .order_by(Household.client_number)).all(),
    }


def test_seed_is_idempotent_deterministic_and_growable(app):
    with app.app_context():
        report = seed_demo(6, today=TODAY, echo=lambda *_: None)
        assert report["households_created"] == 6
        first = _snapshot()
        again = seed_demo(6, today=TODAY, echo=lambda *_: None)
        assert again["households_created"] == 0
        assert _snapshot() == first
        grown = seed_demo(9, today=TODAY, echo=lambda *_: None)
        assert grown["households_created"] == 3
        after = _snapshot()
        assert after["households"] == 9
        assert set(first["names"]) < set(after["names"])
    from tests.conftest import wipe

    wipe(app)
    with app.app_context():
        seed_demo(6, today=TODAY, echo=lambda *_: None)
        assert _snapshot() == first  # same rows from scratch: deterministic


def test_demo_households_match_their_story(app):
    with app.app_context():
        seed_demo(4, today=TODAY, echo=lambda *_: None)
        up_to_date = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(0)))
        late = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(1)))
        assert {lease.unit.kind for lease in up_to_date.leases} == {UnitKind.DWELLING, UnitKind.PARKING}
        assert ledger.household_overdue(up_to_date.id, TODAY) == Decimal("0.00")
        mandates = db.session.scalars(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == up_to_date.id)).all()
        assert [m.status for m in mandates] == [MandateStatus.ACTIVE]
        assert ledger.household_overdue(late.id, TODAY) > Decimal("100.00")
        assert db.session.scalar(sa.select(sa.func.count(DirectDebitMandate.id)).where(
            DirectDebitMandate.household_id == late.id)) == 0
        months = db.session.scalar(sa.select(sa.func.count(sa.distinct(LedgerEntry.period))).where(
            LedgerEntry.household_id == up_to_date.id, LedgerEntry.kind == "DUE_NOTICE"))
        assert months == 24
        linked = {a.user.email: a.household_id for a in db.session.scalars(sa.select(TenantAccount))}
        assert linked == {"locataire@example.org": up_to_date.id, "retard@example.org": late.id}


def test_demo_accounts_log_in(app):
    with app.app_context():
        seed_demo(2, echo=lambda *_: None)
    for email in ("admin@example.org", "gestionnaire@example.org", "locataire@example.org", "retard@example.org"):
        response = login(app.test_client(), email)
        assert response.status_code == 302 and "/login/" not in response.location, email
    refused = login(app.test_client(), "admin@example.org", "wrong-password")
    assert refused.status_code == 200 and "Adresse e-mail ou mot de passe incorrect." in refused.get_data(as_text=True)


def test_seed_command_rejects_bad_arguments(app):
    runner = app.test_cli_runner()
    for bad in ("1", "-5", "abc", "300000"):
        result = runner.invoke(args=["seed-demo", "--households", bad])
        assert result.exit_code != 0, bad
        assert "--households" in result.output
    result = runner.invoke(args=["seed-demo", "--households", "3"])
    assert result.exit_code == 0, result.output
    assert "locataire@example.org" in result.output
