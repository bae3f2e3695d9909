"""Constraints live in the database: they hold even when code forgets them."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError

from app.extensions import db
from app.models import (
    Agency, Civility, Direction, DirectDebitMandate, EntryKind, Household, Lease, LedgerEntry, Residence, Unit, UnitKind,
)


def _household(client_number="12345678", **extra):
    agency = db.session.scalar(sa.select(Agency)) or Agency(code="AG", name="Agence", street="1 rue", postcode="45000",
                                                            city="Orléans", phone="0200", email="a@example.org")
    values = dict(client_number=client_number, agency=agency, signatory_civility=Civility.MADAME,
                  signatory_last_name="Durand", signatory_first_name="Anne", billing_street="1 rue",
                  billing_postcode="45000", billing_city="Orléans")
    values.update(extra)
    return Household(**values)


def _lease(household, number="123456", **extra):
    residence = db.session.scalar(sa.select(Residence)) or Residence(
        code="R1", name="Les Tilleuls", agency=household.agency, street="1 rue", postcode="45000", city="Orléans")
    unit = Unit(reference=f"U-{number}", residence=residence, kind=UnitKind.DWELLING, street="1 rue",
                postcode="45000", city="Orléans")
    values = dict(number=number, unit=unit, household=household, start_date=date(2020, 1, 1),
                  rent=Decimal("400.00"), charges=Decimal("80.00"))
    values.update(extra)
    return Lease(**values)


def _entry(lease, **extra):
    values = dict(household=lease.household, lease=lease, kind=EntryKind.DUE_NOTICE, direction=Direction.DEBIT,
                  amount=Decimal("480.00"), label="Avis", entry_date=date(2026, 1, 1), period="2026-01")
    values.update(extra)
    return LedgerEntry(**values)


def _refused(app, *objects):
    """Called inside an app context: the objects must not reach the database."""
    db.session.add_all(objects)
    with pytest.raises((IntegrityError, StatementError)):
        db.session.commit()
    db.session.rollback()


def test_client_number_is_unique_and_eight_characters(app):
    with app.app_context():
        db.session.add(_household("12345678"))
        db.session.commit()
    with app.app_context():
        _refused(app, _household("12345678"))
    with app.app_context():
        _refused(app, _household("1234"))


def test_lease_number_unique_and_amounts_not_negative(app):
    with app.app_context():
        household = _household()
        db.session.add(_lease(household))
        db.session.commit()
    with app.app_context():
        household = db.session.scalar(sa.select(Household))
        _refused(app, _lease(household, number="123456"))
    with app.app_context():
        household = db.session.scalar(sa.select(Household))
        _refused(app, _lease(household, number="654321", rent=Decimal("-1.00")))
    with app.app_context():
        household = db.session.scalar(sa.select(Household))
        _refused(app, _lease(household, number="654322", end_date=date(2019, 1, 1)))


def test_one_due_notice_per_lease_and_period_but_many_payments(app):
    with app.app_context():
        lease = _lease(_household())
        db.session.add_all([_entry(lease),
                            _entry(lease, kind=EntryKind.TRANSFER, direction=Direction.CREDIT),
                            _entry(lease, kind=EntryKind.TRANSFER, direction=Direction.CREDIT)])
        db.session.commit()
    with app.app_context():
        lease = db.session.scalar(sa.select(Lease))
        _refused(app, _entry(lease))
    with app.app_context():
        lease = db.session.scalar(sa.select(Lease))
        _refused(app, _entry(lease, period="2026-02", amount=Decimal("-5.00")))


def test_debit_day_is_2_7_or_10(app):
    with app.app_context():
        lease = _lease(_household())
        db.session.add(lease)
        db.session.commit()
    for day, accepted in ((7, True), (15, False)):
        with app.app_context():
            lease = db.session.scalar(sa.select(Lease))
            mandate = DirectDebitMandate(reference=f"RUM-{day}", household=lease.household, lease=lease,
                                         iban="FR7630004008190001234567879", account_holder="ANNE DURAND",
                                         debit_day=day)
            if accepted:
                db.session.add(mandate)
                db.session.commit()
                assert mandate.masked_iban == "FR76 **** **** 879"
            else:
                _refused(app, mandate)


def test_enum_columns_refuse_unknown_values(app):
    with app.app_context():
        lease = _lease(_household())
        db.session.add(lease)
        db.session.commit()
        with pytest.raises(IntegrityError):
            db.session.execute(sa.text("UPDATE unit SET kind = 'CASTLE'"))
            db.session.commit()
        db.session.rollback()


def test_timestamps_come_back_as_utc(app):
    moment = datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)
    with app.app_context():
        household = _household(created_at=moment)
        db.session.add(household)
        db.session.commit()
        household_id = household.id
    with app.app_context():
        stored = db.session.get(Household, household_id).created_at
        assert stored == moment and stored.utcoffset().total_seconds() == 0
        lease = _lease(db.session.get(Household, household_id), number="000042")
        assert lease.display_number == "L/000042"
