"""HTTP-level policy: security headers, a per-request CSP nonce, no caching of private pages, `/health`, no
secret in a log line (`redact`), and a development server that does not announce itself (`PortalRequestHandler`)."""

from __future__ import annotations

import re
import secrets
import threading
import weakref

import sqlalchemy as sa
from flask import Blueprint, Flask, abort, current_app, g, jsonify, request
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.serving import WSGIRequestHandler

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
    # Never a path in a Referer, not even to the portal itself: the reset page's own requests would otherwise carry
    # its token into access logs (Referer field). Origin only, not `no-referrer`: Flask-WTF refuses a form posted
    # over HTTPS without a Referer of this origin (WTF_CSRF_SSL_STRICT), so `no-referrer` breaks every form there.
    headers.setdefault("Referrer-Policy", "strict-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config.get("SECURITY_HSTS"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    private = current_user.is_authenticated or request.path.startswith("/login")
    if private and not request.path.startswith(("/static/", "/appbuilder/")):
        headers["Cache-Control"] = "no-store"
    return response


# --- no secret in a log line -----------------------------------------------------------------------------------

REDACTED = "[redacted]"
# A URL argument with one of these names is a secret: its segment never reaches a log line.
SECRET_ARGUMENT_RE = re.compile(r"token|secret|hash|signature|password", re.IGNORECASE)
SECRET_QUERY_RE = re.compile(r"([?&](?:[\w.-]*token|[\w.-]*secret|signature|password|passwd)=)[^&#\s\"'<>]+",
                             re.IGNORECASE)
_SEGMENT = r"[^/?#\s\"'<>\x1b]+"
_ARGUMENT_RE = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")
_apps: weakref.WeakSet = weakref.WeakSet()  # every app whose routes are watched (tests build several)
_routes_lock = threading.RLock()
_routes_cache: dict = {"key": None, "re": None}


def _route_pattern(rule: str, first: int = 0) -> tuple[str, int]:
    """A regular expression for `rule` whose secret arguments are named groups `s<first>`, `s<first+1>`...,
    and how many there are (0: the route holds no secret)."""
    parts, position, count = [], 0, 0
    for match in _ARGUMENT_RE.finditer(rule):
        parts.append(re.escape(rule[position:match.start()]))
        if SECRET_ARGUMENT_RE.search(match.group(1)):
            parts.append(f"(?P<s{first + count}>{_SEGMENT})")
            count += 1
        else:
            parts.append(_SEGMENT)
        position = match.end()
    return "".join(parts), count


def _hide(match: re.Match) -> str:
    text, start = match.group(0), match.start()
    spans = sorted(match.span(name) for name, value in match.groupdict().items() if value is not None)
    pieces, last = [], 0
    for begin, end in spans:
        pieces += [text[last:begin - start], REDACTED]
        last = end - start
    return "".join(pieces) + text[last:]


def _secret_route_re() -> re.Pattern | None:
    """One expression for every route with a secret argument, rebuilt when a watched url_map changes (views are
    registered after `init_app`, so the routes are read when a record is logged, not at start-up)."""
    maps = [app.url_map for app in list(_apps)]
    key = tuple((id(url_map), len(getattr(url_map, "_rules", ()))) for url_map in maps)
    if key != _routes_cache["key"]:
        with _routes_lock:
            rules = {rule.rule for url_map in maps for rule in url_map.iter_rules()}
            patterns, groups = [], 0
            for rule in sorted(rules, key=len, reverse=True):  # the longest route first
                pattern, count = _route_pattern(rule, groups)
                if count:
                    patterns.append(f"(?:{pattern})")
                    groups += count
            _routes_cache["re"] = re.compile("|".join(patterns)) if patterns else None
            _routes_cache["key"] = key
    return _routes_cache["re"]


def redact(text: str) -> str:
    """`text` with the secret segment of every token route (activation, password reset, e-mail change...) and
    every secret-looking query parameter replaced by a marker."""
    routes = _secret_route_re()
    if routes is not None:
        text = routes.sub(_hide, text)
    return SECRET_QUERY_RE.sub(lambda m: m.group(1) + REDACTED, text)


def watch_secret_routes(app: Flask) -> None:
    """Let `redact` know the token routes of `app.url_map` (app.observability masks every log record with it, from
    the development server's access log to gunicorn's and pytest's capture)."""
    with _routes_lock:
        _apps.add(app)
        _routes_cache["key"] = None


# --- the development server ---------------------------------------------------------------------------------------

class PortalRequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler (`python run.py`, `make run`) without the `Server: Werkzeug/x Python/y` banner:
    no `Server` header at all, and no version in the WSGI environment either."""

    server_version = ""  # type: ignore[assignment]  # a property in Werkzeug (SERVER_SOFTWARE, the banner)
    sys_version = ""

    def version_string(self) -> str:
        return ""

    def send_response(self, code, message=None):
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())


def refuse_unknown_actions():
    """Flask-AppBuilder's `/<view>/action/<name>/<pk>` looks the action up without checking it exists (a 500 for
    anyone, signed in or not): an unknown action is a 404 before it gets there."""
    endpoint = request.endpoint or ""
    if not endpoint.endswith(".action"):
        return None
    view_name = endpoint.rsplit(".", 1)[0]
    view = next((v for v in current_app.appbuilder.baseviews if v.endpoint == view_name), None)
    if view is None or (request.view_args or {}).get("name") not in getattr(view, "actions", {}):
        abort(404)
    return None


def init_app(app: Flask) -> None:
    watch_secret_routes(app)
    app.before_request(refuse_unknown_actions)
    app.register_blueprint(health_bp)
    app.context_processor(lambda: {"csp_nonce": csp_nonce, "get_locale": get_locale})
    # Also a global: Flask-AppBuilder renders its widgets without the request's context processors.
    app.add_template_global(csp_nonce, "csp_nonce")
    app.after_request(add_security_headers)
