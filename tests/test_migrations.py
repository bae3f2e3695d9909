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
