"""Application factory: `create_app()` builds everything, so two apps can live in one process (tests)."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from flask_appbuilder import AppBuilder
from flask_wtf.csrf import CSRFProtect
from werkzeug.routing import IntegerConverter

from app import errors, roles
from app.errors import PortalFlask
from config import BaseConfig, load_config

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The largest primary key: every table's id is an `integer` column, 32 bits on PostgreSQL (SQLite takes 64).
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route, bounded to what an id column holds: a larger number is a 404 like any missing
    row, instead of a 500 from the database ("integer out of range" on PostgreSQL, an OverflowError past 64 bits in
    SQLite's driver)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


def create_app(config: BaseConfig | None = None, **overrides) -> Flask:
    config = config if config is not None else load_config()
    app = PortalFlask(__name__, instance_path=str(config.INSTANCE_DIR), instance_relative_config=False)
    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    errors.init_app(app)
    app.config.from_object(config)
    app.config.update(overrides)
    hops = app.config["PROXY_FIX_HOPS"]
    if hops:  # the client's address, scheme and host as the reverse proxy saw them, from that many proxies only
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    from app.services.sepa import creditor_id_problem

    from app.services.direct_debits import calendar_problem
    from config import ConfigError

    problem = creditor_id_problem(app.config.get("SEPA_CREDITOR_ID"))
    if problem:
        raise ConfigError(f"SEPA_CREDITOR_ID is not a valid creditor identifier (ICS): {problem}")
    problem = calendar_problem(app.config["RENT_CALL_DAY"], app.config["SEPA_PRENOTIFICATION_DAYS"])
    if problem:
        raise ConfigError(problem)
    from app.filestore import settings_problem

    problem = settings_problem(app.config)  # FILE_STORAGE and the S3 settings: the files must have somewhere to go
    if problem:
        raise ConfigError(problem)
    # Who may reach what is code (app/roles.py), not deployment configuration.
    app.config["FAB_ROLES"] = roles.FAB_ROLES
    app.config["INSTANCE_DIR"].mkdir(parents=True, exist_ok=True)

    from app.extensions import db, migrate
    from app.services import household_search  # noqa: F401  (its session hook keeps the search terms up to date)
    from app.services import audit  # noqa: F401  (its session hook records what staff change)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf = CSRFProtect(app)

    from app import formatting, http, observability

    formatting.init_app(app)
    http.init_app(app)
    observability.init_app(app)

    with app.app_context():
        appbuilder = AppBuilder(update_perms=False)
        appbuilder.init_app(app, db.session)
        from app.views import register_views

        register_views(appbuilder)

    from app.payments.views import ipn_bp, sandbox_bp

    app.register_blueprint(ipn_bp)
    csrf.exempt(ipn_bp)  # the bank's server-to-server notification: its signature is the proof
    if app.config["SYSTEMPAY_SANDBOX"]:
        app.register_blueprint(sandbox_bp)
        csrf.exempt(sandbox_bp)  # plays the bank, whose pages never carry our CSRF token

    from app.security import enforce_session_version, is_tenant

    app.before_request(enforce_session_version)
    app.context_processor(lambda: {"is_tenant": is_tenant})

    from app import cli

    cli.init_app(app)
    return app
