"""The migrations build the schema from empty on each backend and match the models exactly."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app.extensions import db


def test_models_and_migrations_are_in_sync(app):
    with app.app_context():
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_downgrade_to_empty_then_upgrade_again(app):
    with app.app_context():
        downgrade(revision="base")
        db.session.remove()
        tables = set(sa.inspect(db.engine).get_table_names())
        assert tables <= {"alembic_version"}
        upgrade()
        db.session.remove()
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"household", "lease", "ledger_entry", "ab_user", "tenant_account"} <= tables
        app.appbuilder.sm.sync_roles_and_permissions()


def test_existing_direct_debits_keep_working_after_the_money_trail_migration(app, demo):
    """A mandate of one lease and a collection built the old way (credited ahead of a future date) become a
    mandate covering that lease and a collection sent to the bank, whose early credit waits for its date."""
    from datetime import date, timedelta

    from app.models import CollectionStatus, DirectDebitCollection, DirectDebitMandate, LedgerEntry

    future = date.today() + timedelta(days=6)
    with app.app_context():
        mandate_id, lease_id = db.session.execute(sa.select(DirectDebitMandate.id, DirectDebitMandate.lease_id).where(
            DirectDebitMandate.household_id == demo["locataire"])).one()
        db.session.remove()
        downgrade(revision="58c4da95c56e")
        with db.engine.begin() as connection:
            batch_id = connection.execute(sa.text(
                "INSERT INTO direct_debit_batch (collection_date, period, schema, message_id, count, total, "
                "stored_name, created_at) VALUES (:d, :p, 'pain.008.001.08', 'OLD-MSG', 1, 50, 'old.xml', :now) "
                "RETURNING id"), {"d": future, "p": f"{future:%Y-%m}", "now": "2026-11-20 06:30:00"}).scalar()
            collection_id = connection.execute(sa.text(
                "INSERT INTO direct_debit_collection (batch_id, mandate_id, household_id, lease_id, period, amount, "
                "sequence_type, end_to_end_id) VALUES (:b, :m, :h, :l, :p, 50, 'RCUR', 'OLD-E2E') RETURNING id"),
                {"b": batch_id, "m": mandate_id, "h": demo["locataire"], "l": lease_id,
                 "p": f"{future:%Y-%m}"}).scalar()
            connection.execute(sa.text(
                "INSERT INTO ledger_entry (household_id, lease_id, kind, direction, amount, label, entry_date, "
                "external_ref, created_at) VALUES (:h, :l, 'DIRECT_DEBIT', 'CREDIT', 50, 'old', :d, :ref, :now)"),
                {"h": demo["locataire"], "l": lease_id, "d": future, "ref": f"sdd:{collection_id}",
                 "now": "2026-11-20 06:30:00"})
        upgrade()
        db.session.remove()
        mandate = db.session.get(DirectDebitMandate, mandate_id)
        assert [lease.id for lease in mandate.leases] == [lease_id]
        collection = db.session.get(DirectDebitCollection, collection_id)
        assert collection.status is CollectionStatus.SUBMITTED and collection.collection_date == future
        assert [(share.lease_id, share.amount, share.credit_entry_id) for share in collection.shares] == \
            [(lease_id, collection.amount, None)]
        assert collection.batch.debit_day == future.day
        assert db.session.scalar(sa.select(LedgerEntry).where(
            LedgerEntry.external_ref == f"sdd:{collection_id}")) is None


def test_the_search_migration_fills_the_terms_of_existing_households(app, demo):
    """Households that exist before the search revision are found after it, with the terms the portal writes."""
    from app.models import HouseholdSearchTerm

    with app.app_context():
        written = set(db.session.execute(sa.select(HouseholdSearchTerm.household_id, HouseholdSearchTerm.term)))
        db.session.remove()
        downgrade(revision="e3c1a7a2d003")
        upgrade()
        filled = set(db.session.execute(sa.select(HouseholdSearchTerm.household_id, HouseholdSearchTerm.term)))
    assert filled == written and len({household for household, _ in filled}) == 8
