"""HTTP-level policy: security headers, a per-request CSP nonce, no caching of private pages, and `/health`."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_babel import get_locale
from flask_login import current_user

from app.extensions import db

health_bp = Blueprint("health", __name__)


@health_bp.get("/health")
def health():
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        current_app.logger.exception("health check: database unreachable")
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy() -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{csp_nonce()}'",
            # Flask-AppBuilder's templates use style attributes; scripts stay nonce-only.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
            f"form-action 'self' {payment_origin()}".strip(),
        ]
    )


def payment_origin() -> str:
    """The bank's payment page receives our signed form, so forms may post there too."""
    from urllib.parse import urlsplit

    url = current_app.config.get("SYSTEMPAY_PAYMENT_URL")
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def add_security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config.get("SECURITY_HSTS"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    private = current_user.is_authenticated or request.path.startswith("/login")
    if private and not request.path.startswith(("/static/", "/appbuilder/")):
        headers["Cache-Control"] = "no-store"
    return response


def too_many_requests(error):
    from flask import render_template

    appbuilder = current_app.appbuilder
    return render_template("errors_429.html", appbuilder=appbuilder, base_template=appbuilder.base_template), 429


def init_app(app: Flask) -> None:
    app.register_error_handler(429, too_many_requests)
    app.register_blueprint(health_bp)
    app.context_processor(lambda: {"csp_nonce": csp_nonce, "get_locale": get_locale})
    app.after_request(add_security_headers)
