"""Application factory: `create_app()` builds everything, so two apps can live in one process (tests)."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from flask_appbuilder import AppBuilder
from flask_wtf.csrf import CSRFProtect
from werkzeug.routing import IntegerConverter

from app import roles
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


# Inline, so that the error pages need no template of their own; its strings come translated from error_page().
ERROR_PAGE = """{% extends "appbuilder/base.html" %}
{% block page_title %}{{ title }} - {{ appbuilder.app_name }}{% endblock %}
{% block content %}
<div class="account-box">
  <h1>{{ title }}</h1>
  <p class="lead">{{ message }}</p>
  <p><a href="{{ url_for('HomeIndexView.index') }}">{{ home }}</a></p>
</div>
{% endblock %}"""


def error_page(error):
    """400, 403 and 404 answered in the portal's layout, in the user's language."""
    from flask import current_app, g, render_template_string
    from flask_babel import gettext as _
    from flask_login import current_user

    titles = {400: (_("Requête non valide"), _("Le formulaire ou le lien utilisé n'est pas valide (il a "
                                                "peut-être expiré). Revenez à la page précédente, rechargez-la et "
                                                "réessayez.")),
              403: (_("Accès refusé"), _("Vous n'avez pas accès à cette page.")),
              404: (_("Page introuvable"), _("Cette page n'existe pas ou n'est plus disponible."))}
    title, message = titles[error.code]
    appbuilder = current_app.appbuilder
    g.setdefault("user", current_user)  # the menu needs it; a refusal by CSRFProtect comes before FAB sets it
    return render_template_string(ERROR_PAGE, title=title, message=message, home=_("Retour à l'accueil"),
                                  appbuilder=appbuilder, base_template=appbuilder.base_template), error.code


def create_app(config: BaseConfig | None = None, **overrides) -> Flask:
    config = config if config is not None else load_config()
    app = Flask(__name__, instance_path=str(config.INSTANCE_DIR), instance_relative_config=False)
    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    for code in (400, 403, 404):
        app.register_error_handler(code, error_page)
    app.config.from_object(config)
    app.config.update(overrides)
    from app.services.sepa import creditor_id_problem

    from app.services.direct_debits import calendar_problem
    from config import ConfigError

    problem = creditor_id_problem(app.config.get("SEPA_CREDITOR_ID"))
    if problem:
        raise ConfigError(f"SEPA_CREDITOR_ID is not a valid creditor identifier (ICS): {problem}")
    problem = calendar_problem(app.config["RENT_CALL_DAY"], app.config["SEPA_PRENOTIFICATION_DAYS"])
    if problem:
        raise ConfigError(problem)
    # Who may reach what is code (app/roles.py), not deployment configuration.
    app.config["FAB_ROLES"] = roles.FAB_ROLES
    app.config["INSTANCE_DIR"].mkdir(parents=True, exist_ok=True)

    from app.extensions import db, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf = CSRFProtect(app)

    from app import formatting, http

    formatting.init_app(app)
    http.init_app(app)

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
