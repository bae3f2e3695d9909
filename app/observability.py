"""Watching the portal (issue 13, point 3): request ids and structured logs here, health checks and Prometheus
metrics in `app.probes`.

**Request id.** Every request gets one: the incoming `X-Request-ID` header when it is a sane token (8 to 64 of
`A-Z a-z 0-9 . _ -`, so a reverse proxy's id is kept end to end), else 8 random upper-case hex digits, short enough
to read out on the phone. It is echoed in the response's `X-Request-ID` header, carried by every log line written
during the request (`request_id`), and shown on the error pages as « Référence de l'erreur » (app/errors.py): the
reference a tenant gives their agency is the id that finds the log lines. Outside a request (jobs, commands) lines
carry `request_id: null`.

**Logs.** `configure_logging` puts one handler on the root logger, once per process (the first app's settings
win; a test suite builds many apps, never two handlers): stderr, `LOG_FORMAT` `json` (one object a line: `time`,
`level`, `logger`, `message`, `request_id`, then any `extra=` fields and `exc_info`) or `text`, at `LOG_LEVEL`.
Each request also writes one line on the `app.requests` logger (method, URL rule, status, duration: the rule, never
the raw path or query, so no identifier or token gets there; DEBUG for the probes and static files, INFO
otherwise).

**Nothing secret in a line.** On top of `app.http`'s redaction (tokens in routes and query strings), every record
is scrubbed when it is created and again by the handler: values of keys named like password, token, secret,
cookie, authorization or api key (in dict or tuple arguments, `extra=` fields, `key=value` / `key: value` text,
`Cookie:` and `Authorization:` headers) become `[redacted]`, and anything IBAN-like becomes `****` and its last 4
characters. Tracebacks are scrubbed the same way.

Gunicorn's own lines (`gunicorn.error`, `gunicorn.access`) do not propagate to the root logger and keep gunicorn's
format; its access log is off by default, and the `app.requests` line replaces it.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import threading
import time
from collections.abc import Mapping

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from flask.signals import request_finished, request_started
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from werkzeug.datastructures import Headers, MultiDict

from app import http as portal_http
from app import probes
from config import ConfigError

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{8,64}")
REDACTED = portal_http.REDACTED
LOG_FORMATS = ("json", "text")
requests_log = logging.getLogger("app.requests")
QUIET_ENDPOINTS = {"static", "appbuilder.static"}  # request lines at DEBUG, like the probes'


# --- request id -------------------------------------------------------------------------------------------------

def new_request_id() -> str:
    return secrets.token_hex(4).upper()


def request_id() -> str | None:
    """This request's id (None outside a request): the incoming X-Request-ID if sane, else a new one."""
    if not has_request_context():
        return None
    value = g.get("request_id")
    if value is None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        value = g.request_id = incoming if SANE_REQUEST_ID_RE.fullmatch(incoming) else new_request_id()
    return value


def _on_request_started(sender, **extra) -> None:
    g.pop("request_id", None)  # `g` outlives a request when a test holds the app context: always a fresh id
    request_id()
    g.observability_started = time.perf_counter()


def _echo_request_id(response):
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def _on_request_finished(sender, response, **extra) -> None:
    started = g.get("observability_started")
    duration = time.perf_counter() - started if started is not None else 0.0
    endpoint = request.endpoint or "unmatched"
    probes.observe_request(request.method, endpoint, response.status_code, duration)
    rule = request.url_rule.rule if request.url_rule is not None else "-"
    quiet = request.blueprint in probes.QUIET_BLUEPRINTS or endpoint in QUIET_ENDPOINTS
    level = logging.DEBUG if quiet else logging.INFO
    requests_log.log(level, "%s %s %s %.1f ms", request.method, rule, response.status_code, duration * 1000,
                     extra={"method": request.method, "endpoint": endpoint, "status": response.status_code,
                            "duration_ms": round(duration * 1000, 1)})


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record: this request's id, or None outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = request_id()
        except RuntimeError:  # never let a log line fail for want of a context
            record.request_id = None
        return True


# --- nothing secret in a line -----------------------------------------------------------------------------------

SENSITIVE_KEY_RE = re.compile(r"password|passwd|token|secret|cookie|authori[sz]ation|api[_-]?key", re.IGNORECASE)
_KEY = r"[\w.-]*(?:password|passwd|token|secret|cookie|authori[sz]ation|api[_-]?key)[\w.-]*"
# `Cookie: a=1; b=2`, `Authorization: Bearer x`: the whole header value.
SENSITIVE_HEADER_RE = re.compile(r"\b((?:set-)?cookie|(?:proxy-)?authori[sz]ation)(\s*:\s*)(?!\[redacted\])[^\r\n]+",
                                 re.IGNORECASE)
# `password=x`, `token: x`, `'password': 'x y'` (a dict's repr), `('password', 'x')` (a form's items).
SENSITIVE_PAIR_RE = re.compile(
    rf"""(?P<prefix>(?P<kq>["']){_KEY}(?P=kq)\s*[:=,]\s*|\b{_KEY}\s*[:=]\s*)(?!\[redacted\])"""
    rf"""(?:(?P<vq>["'])(?:\\.|(?!(?P=vq))[^\\\r\n])*(?P=vq)?|(?:(?:Bearer|Basic|Token)\s+)?[^\s"',;&)}}\]]+)""",
    re.IGNORECASE)
# Country codes of the IBAN registry and of the countries using IBAN-like numbers (a typo in the check digits is
# still an account number: the check digits are not verified).
_IBAN_COUNTRIES = (
    "AD AE AL AO AT AZ BA BE BF BG BH BI BJ BR BY CF CG CH CI CM CR CV CY CZ DE DJ DK DO DZ EE EG ES FI FK FO FR GA "
    "GB GE GI GL GQ GR GT GW HN HR HU IE IL IQ IR IS IT JO KM KW KZ LB LC LI LT LU LV LY MA MC MD ME MG MK ML MN MR "
    "MT MU MZ NE NI NL NO OM PK PL PS PT QA RO RS RU SA SC SD SE SI SK SM SN SO ST SV TD TG TL TN TR UA VA VG XK YE"
)
IBAN_RE = re.compile(
    rf"\b(?:{_IBAN_COUNTRIES.replace(' ', '|')})\d{{2}}(?:[ ]?[A-Z0-9]{{4}}){{2,7}}(?:[ ]?[A-Z0-9]{{1,4}})?\b",
    re.IGNORECASE)
# Record attributes that are logging's own (not `extra=` fields).
_STANDARD_ATTRS = frozenset(RESERVED_ATTRS) | {"message", "asctime", "request_id", "taskName"}


def mask_iban(match: re.Match) -> str:
    return "****" + re.sub(r"\s", "", match.group(0))[-4:]


def _hide_pair(match: re.Match) -> str:
    quote = match.group("vq") or ""
    return f"{match.group('prefix')}{quote}{REDACTED}{quote}"


def scrub_text(text: str) -> str:
    """`text` without tokens (app.http.redact), sensitive key/value pairs, cookie or authorization headers, or
    IBANs (masked to their last 4 characters)."""
    text = portal_http.redact(text)
    text = SENSITIVE_HEADER_RE.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = SENSITIVE_PAIR_RE.sub(_hide_pair, text)
    return IBAN_RE.sub(mask_iban, text)


def is_sensitive_key(key) -> bool:
    return isinstance(key, str) and SENSITIVE_KEY_RE.search(key) is not None


def scrub_value(value, depth: int = 0):
    """A copy of `value` (a string, mapping, header set, form or sequence of them) with sensitive keys' values
    replaced and every string scrubbed; anything else as is (its text is scrubbed once formatted)."""
    if depth > 6:
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, MultiDict):
        value = value.to_dict(flat=False)
    if isinstance(value, Headers):
        value = dict(value.items())
    if isinstance(value, Mapping):
        return {key: REDACTED if is_sensitive_key(key) else scrub_value(item, depth + 1)
                for key, item in value.items()}
    if isinstance(value, tuple) and len(value) == 2 and is_sensitive_key(value[0]):  # a (name, value) pair
        return (value[0], REDACTED)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [scrub_value(item, depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def scrub_message(record: logging.LogRecord) -> None:
    """The record's message (its arguments first: a dict argument loses its sensitive values by key) and
    traceback, scrubbed; the message is formatted now when something changed or an argument is an object."""
    if getattr(record, "_sensitive_scrubbed", False):
        return
    record._sensitive_scrubbed = True
    if isinstance(record.msg, Mapping):  # python-json-logger logs a dict message as fields
        record.msg = scrub_value(record.msg)
        return
    plain = (str, int, float, type(None))
    objects = isinstance(record.args, Mapping) or any(not isinstance(a, plain) for a in record.args or ())
    if objects:
        record.args = scrub_value(record.args) if isinstance(record.args, Mapping) else tuple(
            a if isinstance(a, plain) else scrub_value(a) for a in record.args)
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record: logging reports it when emitted, never the caller
        return
    clean = scrub_text(message)
    if clean != message or objects:
        # formatted once, here: what handlers write is what was scrubbed (an object's text could change later, or
        # need a database session that is gone by then)
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[0] is not None:
        # the traceback as any formatter would write it (it keeps `exc_text`), scrubbed
        text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        clean = scrub_text(text)
        if clean != text:
            record.exc_text = clean


def scrub_record(record: logging.LogRecord) -> None:
    """Everything a handler may write: the message, `extra=` fields, exception text and stack."""
    scrub_message(record)
    for key, value in list(record.__dict__.items()):
        if key in _STANDARD_ATTRS or key.startswith("_"):
            continue
        record.__dict__[key] = REDACTED if is_sensitive_key(key) else scrub_value(value)
    if record.exc_text:
        record.exc_text = scrub_text(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub_text(record.stack_info)


class SensitiveDataFilter(logging.Filter):
    """A handler filter that scrubs, never drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def _install_record_scrubbing() -> None:
    """Scrub every record's message when it is created (as app.http does for tokens), so handlers other than ours
    (pytest's, an error tracker's) get clean messages too; `extra=` fields come later, for the handler's filter."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_scrubs_sensitive_data", False):
        return

    def scrubbing_factory(*args, **kwargs):
        record = factory(*args, **kwargs)
        scrub_message(record)
        return record

    scrubbing_factory._scrubs_sensitive_data = True
    logging.setLogRecordFactory(scrubbing_factory)


# --- formatters and the handler ---------------------------------------------------------------------------------

class PortalJsonFormatter(JsonFormatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, extra fields, exc_info."""

    FIRST = ("time", "level", "logger", "message", "request_id")

    def __init__(self):
        super().__init__("{levelname}{name}{message}", style="{", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})

    def formatException(self, ei) -> str:
        return scrub_text(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return scrub_text(super().formatStack(stack_info))

    def process_log_record(self, log_data):
        ordered = {key: log_data.pop(key, None) for key in self.FIRST}
        exc = log_data.pop("exc_info", None)
        ordered.update(log_data)
        if exc:
            ordered["exc_info"] = exc
        return ordered


class PortalTextFormatter(logging.Formatter):
    """A readable line: time, level, logger, [request id or -], message."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return self._fmt % {**record.__dict__, "request_id": getattr(record, "request_id", None) or "-"}

    def formatException(self, ei) -> str:
        return scrub_text(super().formatException(ei))


def make_formatter(log_format: str) -> logging.Formatter:
    return PortalJsonFormatter() if log_format == "json" else PortalTextFormatter()


class PortalLogHandler(logging.StreamHandler):
    """The process's log handler: sys.stderr looked up at each write (gunicorn and pytest replace it), unless
    `setStream` gave another stream."""

    def __init__(self):
        logging.Handler.__init__(self)
        self._stream = None
        self.addFilter(RequestIdFilter())
        self.addFilter(SensitiveDataFilter())

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stderr

    @stream.setter
    def stream(self, value):
        self._stream = value


def log_format(config) -> str:
    value = (config.get("LOG_FORMAT") or ("json" if config.get("ENV_NAME") == "production" else "text")).lower()
    if value not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be json or text, got {value!r}")
    return value


def log_level(config) -> int:
    value = config.get("LOG_LEVEL") or "INFO"
    level = value if isinstance(value, int) else logging.getLevelName(str(value).strip().upper())
    if not isinstance(level, int):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
    return level


def portal_handler() -> PortalLogHandler | None:
    """The handler `configure_logging` put on the root logger, if it is still there."""
    return next((h for h in logging.getLogger().handlers if isinstance(h, PortalLogHandler)), None)


_logging_lock = threading.Lock()


def configure_logging(config) -> PortalLogHandler:
    """Put the portal's handler on the root logger, once per process (idempotent: a second app, or a second call,
    reuses it with the first settings). Alembic's `fileConfig` (migrations) replaces the root handlers; the next
    call puts ours back."""
    fmt, level = log_format(config), log_level(config)
    with _logging_lock:
        handler = portal_handler()
        if handler is None:
            handler = PortalLogHandler()
            handler.setFormatter(make_formatter(fmt))
            root = logging.getLogger()
            root.addHandler(handler)
            root.setLevel(level)
        _install_record_scrubbing()
    return handler


# --- wiring -----------------------------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    """Logs, request ids and the probes (/health/live, /health/ready, /metrics). Called by `create_app` after
    `http.init_app`."""
    configure_logging(app.config)
    app.logger.removeHandler(default_handler)  # Flask's own stderr handler would write each app line twice
    request_started.connect(_on_request_started, app)
    request_finished.connect(_on_request_finished, app)
    app.after_request(_echo_request_id)
    app.add_template_global(request_id, "request_id")
    probes.init_app(app)
