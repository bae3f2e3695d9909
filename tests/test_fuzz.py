"""Property-based fuzzing of every route and every rendered form: whatever the input, never a 500.

For an anonymous visitor, a tenant and a staff member, every rule of `app.url_map` is requested with hypothesis
junk in each path argument and in the query string (Flask-AppBuilder's list arguments `page_<view>`,
`psize_<view>`, `_oc_<view>`, `_od_<view>` and `_flt_<n>_<column>` included); routes that take POST are also posted
junk fields with the session's real CSRF token. Then every form that the role's pages render (pages fetched with
real ids, the real CSRF token kept) is posted, or sent as a query for a GET form: first each field in turn with the
values most likely to break it (`Infinity`, `NaN`, `1e13`, `1E308`, `-0`, impossible dates, 10,000 characters,
`<script>`) while the other fields hold plausible values, so that the request gets past validation into the services
and the database; then hypothesis examples with one, two or all fields junk (quotes, unicode, empty, omitted...).
Last, every page is opened again as the tenant and as staff: junk that a form accepted must not break a page later.

A status of 500 or more, or an exception escaping a view (the testing app propagates them), is a failure. Failures
are collected rather than raised inside hypothesis (no shrinking, so the time stays bounded); the first request of
each cause is replayed one input at a time to name the input that alone brings it, and the assertion lists each
distinct cause with that role, method, URL, field and value, the head of the traceback, and where else it showed.

Runs on SQLite only, on its own module-scoped app (as tests/browser.py does), with a fixed number of examples per
route and per form, derandomized so that every run, in CI too, sends the same inputs.
"""

from __future__ import annotations

import functools
import io
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from app.extensions import db
from tests.conftest import login, make_app, wipe

# Flask-AppBuilder keeps the pages visited in the session (its "back" history): long junk query strings make the
# cookie exceed 4 KB. Werkzeug warns about it; that is not a 500, and this file prints nothing.
pytestmark = pytest.mark.filterwarnings("ignore:The '.*' cookie is too large:UserWarning")

ROLES = {
    "anonymous": None,
    "tenant": "locataire@example.org",
    "staff": "gestionnaire@example.org",
}
# Examples per route (path and query junk, plus form junk for POST routes) and per rendered form.
ROUTE_EXAMPLES = 3
FORM_EXAMPLES = 12

# Routes that end or change the session are walked last, so that the rest runs signed in and in French.
WALKED_LAST = ("LocaleView.index", "PortalAuthDBView.logout")
# Query parameters that the portal's own views read (request.args), besides Flask-AppBuilder's list arguments.
QUERY_NAMES = ("next", "contrat", "code", "du", "au", "mois", "page", "status", "q")
# Plausible values by a part of the field's name: the other fields of a form get these while one is junk.
PLAUSIBLE = [
    (("date", "birth", "arrival", "departure"), [lambda today: today.isoformat(), "2020-01-15"]),
    (("period", "mois"), [lambda today: f"{today:%Y-%m}"]),
    (("du", "au"), [lambda today: today.isoformat()]),
    (("amount", "montant", "rent", "charges", "deposit", "benefit"), ["12.50", "0"]),
    (("email", "username"), ["fuzz@example.org", "locataire@example.org"]),
    # Never the demo accounts' real password: a fuzzed "close my account" must not succeed.
    (("password", "confirm"), ["Autre-Mot-De-Passe-2026!"]),
    (("iban",), ["FR7630004008190001234567879"]),
    (("bic",), ["BNPAFRPPXXX"]),
    (("phone",), ["0601020304"]),
    (("postcode",), ["45000"]),
    (("city",), ["Orléans"]),
    (("name", "surname", "holder"), ["Martin"]),
    (("day", "year", "floor", "rating"), ["5", "2020"]),
]
# Form fields sent to a POST route by the route walk (the form walk posts each rendered form's real fields).
BLIND_FIELDS = ("rowid", "action", "amount", "montant", "status", "period", "name", "email", "password", "next")

NASTY = [
    "", " ", "0", "-0", "-1", "1e13", "-1e13", "1E308", "Infinity", "-Infinity", "NaN", "nan", "inf", "+inf",
    "99999999999999999999", str(2**63), str(-(2**63) - 1), "0.001", "12,50", "1 234,56", "1_000", "0x1F", "١٢٣",
    "abc", "'", '"', "\\", "`", "<script>alert(1)</script>", "' OR '1'='1' --", "%00", "\x00", "\r\n",
    "../../../etc/passwd", "..\\..\\windows", "é€😀", "\u202e\u200b", "ﷺ" * 50, "2026-02-30", "0000-00-00",
    "9999-12-31", "31/12/2026", "2026-13", "-2026-01-01", "12:99", "x" * 10_000, "null", "None", "true", "[]",
    "{}", "a@b", "@", "FR76 3000 4008 1900 0123 4567 879", "{{7*7}}", "%(x)s", "${x}",
]
PATH_NASTY = [
    "99999999999999999999", str(2**63), str(2**64 + 1), "-1", "0", "%00", "../../config.py", "..%2F..%2Fconfig.py",
    "é€😀", "x" * 5_000, "1e13", "NaN", "'", "<script>", "%", "?", "#", ".", "..", "\x00",
]
FILE_BODIES = [
    b"", b"%PDF-1.4\n%junk", b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, b"\xff\xd8\xff\xe0junk", b"GIF89a", b"PK\x03\x04",
    b"<html><script>alert(1)</script></html>", bytes(range(256)),
]
OMIT = object()
ROOT = Path(__file__).resolve().parent.parent
RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

junk = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers().map(str),
    st.floats().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.dates(min_value=date(1, 1, 1)).map(lambda d: d.isoformat()),
    st.text(min_size=200, max_size=2_000),
)
path_junk = st.one_of(st.sampled_from(PATH_NASTY), st.integers().map(str), st.text(min_size=1, max_size=30))


# ---------------------------------------------------------------------------------------------------------------
# Pages and forms


class FormParser(HTMLParser):
    """The forms of a page: action, method, and each field (name, kind, rendered value, options)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: dict | None = None
        self._textarea: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": attrs.get("action", ""), "method": attrs.get("method", "get").upper(),
                          "fields": []}
            self.forms.append(self._form)
            return
        if tag == "option" and self._select is not None:
            self._select["options"].append(attrs.get("value", ""))
            return
        if self._form is None or "name" not in attrs or "disabled" in attrs:
            return
        item = {"name": attrs["name"], "value": attrs.get("value", ""), "options": []}
        if tag == "input":
            item["kind"] = attrs.get("type", "text").lower()
            if item["kind"] in ("checkbox", "radio") and "value" not in attrs:
                item["value"] = "on"
        elif tag == "button":
            item["kind"] = "submit" if attrs.get("type", "submit").lower() == "submit" else "button"
        elif tag == "select":
            item["kind"] = "select"
            item["multiple"] = "multiple" in attrs
            self._select = item
        elif tag == "textarea":
            item["kind"] = "textarea"
            self._textarea = item
        else:
            return
        if item["kind"] not in ("button", "reset", "image"):
            self._form["fields"].append(item)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea["value"] += data


def page_forms(html: str) -> list[dict]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def form_key(form: dict, page_url: str) -> tuple:
    names = tuple(sorted({f["name"] for f in form["fields"] if not f["name"].endswith("csrf_token")}))
    return form["method"], urlsplit(urljoin(page_url, form["action"])).path, names


def csrf_of(forms: list[dict]) -> str | None:
    for form in forms:
        for item in form["fields"]:
            if item["name"].endswith("csrf_token") and item["value"]:
                return item["value"]
    return None


def html_of(response) -> str | None:
    """The page's HTML, or None for anything else (a redirect, a file); the response is closed either way."""
    if response is None:
        return None
    try:
        if response.status_code != 200 or response.mimetype != "text/html":
            return None
        return response.get_data(as_text=True)
    finally:
        response.close()


# ---------------------------------------------------------------------------------------------------------------
# Real ids, so that pages with forms render


def first_pk(app, view_name: str):
    view = fab_view(app, view_name)
    if view is None or not hasattr(view, "datamodel"):
        return None
    with app.test_request_context():
        _, items = view.datamodel.query(view._base_filters, page=0, page_size=1)
        pk = items[0].id if items else None
        db.session.remove()
    return pk


def real_ids(app, household_id: int) -> dict:
    """One row of each kind that URLs name, the tenant's own where it has one."""
    from app import models as m

    def first(statement):
        return db.session.scalar(statement.limit(1))

    with app.app_context():
        own = {
            "request_id": first(sa.select(m.TenantRequest.id).where(m.TenantRequest.household_id == household_id)),
            "certificate_id": first(sa.select(m.InsuranceCertificate.id).where(
                m.InsuranceCertificate.household_id == household_id)),
            "mandate_id": first(sa.select(m.DirectDebitMandate.id).where(
                m.DirectDebitMandate.household_id == household_id)),
            "document_id": first(sa.select(m.Document.id).where(m.Document.household_id == household_id)),
            "lease_id": first(sa.select(m.Lease.id).where(m.Lease.household_id == household_id)),
            "transaction_id": first(sa.select(m.PaymentTransaction.id).where(
                m.PaymentTransaction.household_id == household_id)),
            "order_id": first(sa.select(m.PaymentTransaction.order_id).where(
                m.PaymentTransaction.household_id == household_id)),
            "attachment_id": first(sa.select(m.Attachment.id)),
            "batch_id": first(sa.select(m.DirectDebitBatch.id)),
            "collection_id": first(sa.select(m.DirectDebitCollection.id)),
            "import_id": first(sa.select(m.BankFileImport.id)),
        }
        today = date.today()
        own["period"] = f"{today.year if today.month > 2 else today.year - 1}-{(today.month - 3) % 12 + 1:02d}"
        db.session.remove()
    return {k: v for k, v in own.items() if v is not None}


def fab_view(app, name: str):
    return next((v for v in app.appbuilder.baseviews if v.__class__.__name__ == name), None)


def real_url(app, rule, ids: dict) -> str | None:
    values = {}
    for argument in rule.arguments:
        if argument == "pk":
            values["pk"] = first_pk(app, rule.endpoint.partition(".")[0])
        else:
            values[argument] = ids.get(argument)
        if values[argument] is None:
            return None
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


# ---------------------------------------------------------------------------------------------------------------
# Strategies


def fab_query_names(app, endpoint: str) -> list[str]:
    """Flask-AppBuilder's list arguments for the view of `endpoint` and its related views, with real columns."""
    view = fab_view(app, endpoint.partition(".")[0])
    if view is None or not hasattr(view, "datamodel"):
        return []
    names = []
    for each in [view, *getattr(view, "_related_views", [])]:
        label = each.__class__.__name__
        names += [f"page_{label}", f"psize_{label}", f"_oc_{label}", f"_od_{label}"]
        columns = list(getattr(each, "search_columns", []) or [])[:3] or ["id"]
        names += [f"_flt_{n}_{column}" for column in columns for n in (0, 1, 9)]
        names.append(f"_flt_0_{'x' * 300}")
    return names


def query_strategy(names) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={name: junk for name in names})


def field_strategy(item: dict) -> st.SearchStrategy:
    """Junk for one field (or the field left out)."""
    kind, value = item["kind"], item["value"]
    if kind == "file":
        return st.one_of(st.just(OMIT), st.tuples(st.sampled_from(FILE_BODIES), junk))
    if kind == "submit":
        return st.just(value)
    if kind == "select" and item.get("multiple"):
        return st.lists(junk, max_size=3)
    return st.one_of(junk, st.just(OMIT))


def plausible_strategy(item: dict, known: dict) -> st.SearchStrategy:
    """A value that may pass validation: as rendered, seen in another form, an option, or made up from the name."""
    kind, name, value = item["kind"], item["name"], item["value"]
    if kind == "file":
        return st.sampled_from([OMIT, (sample_pdf(), "attestation.pdf"), (sample_png(), "photo.png")])
    if kind in ("submit", "checkbox", "radio"):
        return st.sampled_from([value, OMIT]) if kind != "submit" else st.just(value)
    options = [o for o in item["options"] if o]
    if kind == "select":
        one = st.sampled_from(options or [""])
        return st.lists(one, min_size=1, max_size=2) if item.get("multiple") else one
    candidates = ([value] if value else []) + sorted(known.get(name.rpartition("-")[2], ())) + plausible(item)
    return st.sampled_from(list(dict.fromkeys(candidates)))


def plausible(item: dict) -> list[str]:
    """Made-up values that look right for a field, from its type or its name."""
    name, kind = item["name"].rpartition("-")[2].lower(), item["kind"]
    today = date.today()
    for words, values in PLAUSIBLE:
        if any(word in name for word in words):
            return [v(today) if callable(v) else v for v in values]
    if kind == "date":
        return [today.isoformat()]
    if kind == "number":
        return ["1"]
    return ["Texte"]


@functools.cache
def sample_pdf() -> bytes:
    from pypdf import PdfWriter

    out = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(out)
    return out.getvalue()


@functools.cache
def sample_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "PNG")
    return out.getvalue()


def sharp_values(item: dict) -> list[str]:
    """The values most likely to break a field of this kind: tried first, one field at a time."""
    name, kind = item["name"].rpartition("-")[2].lower(), item["kind"]
    if kind in ("submit", "checkbox", "radio", "file") or item["name"].endswith("csrf_token"):
        return []
    if kind == "number" or any(w in name for w in ("amount", "montant", "rent", "charges", "deposit", "benefit",
                                                    "day", "year", "floor", "rating")):
        return ["Infinity", "NaN", "1e13", "1E308", "-0", "99999999999999999999", "-1"]
    if kind == "date" or any(w in name for w in ("date", "birth", "arrival", "departure", "period", "mois")):
        return ["2026-02-30", "0000-00-00", "99999-12-31"]
    if kind == "select":
        return ["", " ", "99999999999999999999"]
    return ["x" * 10_000, "'\"<script>alert(1)</script>"]


def explicit_examples(form: dict, known: dict) -> list[dict]:
    """Each field in turn given each of its sharp values, the other fields given their first plausible value."""
    fields = fuzzed_fields(form)
    first = {name: first_plausible(item, known) for name, item in fields.items()}
    return [{**first, name: value} for name, item in sorted(fields.items()) for value in sharp_values(item)]


def first_plausible(item: dict, known: dict):
    kind, value = item["kind"], item["value"]
    if kind in ("file",):
        return OMIT
    if kind in ("submit", "checkbox", "radio") or value:
        return value
    options = [o for o in item["options"] if o]
    if kind == "select":
        return ([options[0]] if item.get("multiple") else options[0]) if options else ""
    return (sorted(known.get(item["name"].rpartition("-")[2], ())) + plausible(item))[0]


def fuzzed_fields(form: dict) -> dict:
    fields = {}
    for item in form["fields"]:
        if item["name"].endswith("csrf_token") or (item["kind"] == "radio" and item["name"] in fields):
            continue
        fields[item["name"]] = item
    return fields


@st.composite
def form_values(draw, form: dict, known: dict) -> dict:
    """One or two fields junk and the others plausible (to get past validation into the services and the
    database), or every field junk."""
    fields = fuzzed_fields(form)
    names = sorted(fields)
    if not names:
        return {}
    mode = draw(st.sampled_from(["one", "two", "all"]))
    junked = set(names) if mode == "all" else draw(
        st.sets(st.sampled_from(names), min_size=1, max_size=1 if mode == "one" else 2))
    return {name: draw(field_strategy(fields[name]) if name in junked else plausible_strategy(fields[name], known))
            for name in names}


def rendered_values(form: dict) -> dict:
    """The form as the page renders it: each field's value, the first option of a select, no file, checked boxes."""
    values = {}
    for item in form["fields"]:
        name, kind = item["name"], item["kind"]
        if name.endswith("csrf_token") or kind == "file" or (kind in ("checkbox", "radio") and name in values):
            continue
        values[name] = (item["options"] or [""])[0] if kind == "select" and not item["value"] else item["value"]
    return values


def as_body(values: dict) -> dict:
    body = {}
    for name, value in values.items():
        if value is OMIT:
            continue
        if isinstance(value, tuple):  # a file: (content, filename)
            value = (io.BytesIO(value[0]), value[1] or "f")
        body[name] = value
    return body


def quote_path(value: str, keep_slashes: bool) -> str:
    return quote(value, safe="/" if keep_slashes else "")


def fuzz_settings(examples: int) -> settings:
    """A fixed number of examples, derandomized (CI replays the same inputs), no deadline, no shrinking (500s are
    collected, not raised), and no example database written into the work tree."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck),
                    print_blob=False)


def digest_key(function, key: str) -> None:
    """Give each generated test its own derandomized seed (hypothesis otherwise seeds from the source code alone)."""
    function._hypothesis_internal_add_digest = key.encode()


# ---------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class Probe:
    """One fuzzed request, kept in parts so that a failing one can be replayed one input at a time."""

    method: str
    build_url: Callable[[dict], str]
    path: dict = field(default_factory=dict)  # junk path arguments
    query: dict = field(default_factory=dict)  # junk query parameters
    fields: dict = field(default_factory=dict)  # junk form fields (a file is (content, filename))
    base_query: dict = field(default_factory=dict)  # a GET form as rendered: what the other inputs are on replay
    base_fields: dict = field(default_factory=dict)  # a POST form as rendered
    fixed: dict = field(default_factory=dict)  # always sent: the CSRF token

    @property
    def url(self) -> str:
        return self.build_url(self.path)

    def inputs(self) -> dict:
        return {**{f"<{k}>": v for k, v in self.path.items()}, **{f"?{k}": v for k, v in self.query.items()},
                **self.fields}

    def send(self, client):
        data = {**as_body(self.fields), **self.fixed} if self.method == "POST" else None
        return client.open(self.url, method=self.method, query_string=as_body(self.query), data=data)

    def variants(self):
        """(input, value, probe with only that input junk and the others as rendered), path arguments first."""
        alone = replace(self, query=self.base_query, fields=self.base_fields)
        if self.path:
            yield ", ".join(f"<{k}>" for k in self.path), ", ".join(map(short, self.path.values())), alone
        for name, value in self.query.items():
            yield f"?{name}", short(value), replace(alone, query={**self.base_query, name: value})
        for name, value in self.fields.items():
            yield name, short(value), replace(alone, fields={**self.base_fields, name: value})


def cause_of(error, status, endpoint) -> tuple[tuple, str]:
    """What makes two 500s the same: the exception and the lines of the portal and of the library that raised it."""
    if error is None:
        return (f"HTTP {status}", endpoint), f"HTTP {status}"
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(ROOT)) and f.filename != __file__
            and "/site-packages/" not in f.filename]
    where = [f"{f.filename.split('/site-packages/')[-1].replace(str(ROOT), '')}:{f.lineno}"
             for f in (ours[-1:] + frames[-1:])]
    at = " <- ".join(dict.fromkeys(reversed(where)))
    return (type(error).__name__, at), f"{type(error).__name__}: {clip(str(error), 160)} (at {at})"


class Failures:
    """The 500s met, grouped by cause: for each, the input that alone brings it (or the whole request when none
    does), and every role and endpoint where it showed."""

    def __init__(self):
        self.causes: dict[tuple, dict] = {}

    def __contains__(self, cause):
        return cause in self.causes

    def record(self, cause, message, role, endpoint, probe: Probe, culprit: str | None):
        entry = self.causes.setdefault(cause, {"message": message, "where": {}, "example": None})
        entry["where"].setdefault(f"{role} {probe.method} {endpoint}", None)
        if entry["example"] is None:
            inputs = probe.inputs()
            given = culprit or ("these inputs together: " + ", ".join(f"{k}={short(v)}" for k, v in inputs.items())
                                if inputs else "no input")
            entry["example"] = f"[{role}] {probe.method} {clip(probe.url, 150)} with {given}"

    def __bool__(self):
        return bool(self.causes)

    def report(self) -> str:
        lines = [f"{len(self.causes)} distinct causes of 500:"]
        for entry in self.causes.values():
            places = list(entry["where"])
            lines += [f"- {entry['message']}", f"    e.g. {entry['example']}",
                      f"    seen at {len(places)}: {'; '.join(places[:6])}{' ...' if len(places) > 6 else ''}"]
        return "\n".join(lines)


def short(value, limit: int = 60) -> str:
    return clip(repr(value), limit)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


class Session:
    """A test client for one role that signs in again whenever a fuzzed request ended its session."""

    def __init__(self, app, role):
        self.app, self.role, self.email = app, role, ROLES[role]
        self.client = app.test_client()
        self.sign_in()

    def sign_in(self):
        if self.email is None:
            return
        from app.models import Throttle

        # Junk passwords may have locked the account, a fuzzed staff action may have disabled it: both are
        # legitimate outcomes, not what is tested here.
        with self.app.app_context():
            db.session.execute(sa.delete(Throttle))
            db.session.execute(sa.text("UPDATE ab_user SET active = :yes WHERE email = :email"),
                               {"yes": True, "email": self.email})
            db.session.commit()
            db.session.remove()
        self.client = self.app.test_client()
        response = login(self.client, self.email)
        assert response.status_code == 302, f"sign-in failed for {self.email}"

    def signed_in(self) -> bool:
        """Whether the session still names the user (read from the cookie jar, without a request)."""
        if self.email is None:
            return True
        with self.client.session_transaction() as session:
            return "_user_id" in session

    def csrf_token(self) -> str:
        for url in ("/login/", "/mon-compte/", "/userinfoeditview/form", "/compte/creer"):
            token = csrf_of(page_forms(html_of(self.client.get(url)) or ""))
            if token:
                return token
        raise AssertionError(f"no CSRF token found for {self.role}")

    def outcome(self, probe: Probe, endpoint: str):
        """(cause, message) of a 500, or None."""
        try:
            response = probe.send(self.client)
        except Exception as error:  # noqa: BLE001 - an exception escaping a view is the 500 looked for
            return cause_of(error, 500, endpoint)
        response.close()
        return cause_of(None, response.status_code, endpoint) if response.status_code >= 500 else None

    def get(self, failures: Failures, endpoint: str, url: str):
        """GET a page with real ids, recording a 500; the response (to read with html_of), or None."""
        try:
            response = self.client.get(url)
        except Exception as error:  # noqa: BLE001
            failures.record(*cause_of(error, 500, endpoint), self.role, endpoint, Probe("GET", lambda _: url), None)
            return None
        if response.status_code >= 500:
            failures.record(*cause_of(None, response.status_code, endpoint), self.role, endpoint,
                            Probe("GET", lambda _: url), None)
        return response

    def send(self, failures: Failures, endpoint: str, probe: Probe):
        found = self.outcome(probe, endpoint)
        if found is None:
            return
        cause, message = found
        culprit = None
        if cause not in failures:  # first time: find which input alone brings it
            for name, value, variant in probe.variants():
                if self.outcome(variant, endpoint) == found:
                    culprit = f"{name} = {value}"
                    break
        failures.record(cause, message, self.role, endpoint, probe, culprit)


def walk_order(rule):
    return (rule.endpoint in WALKED_LAST, WALKED_LAST.index(rule.endpoint) if rule.endpoint in WALKED_LAST else 0,
            rule.rule, rule.endpoint)


def fuzz_route(app, session: Session, failures: Failures, rule, csrf: str):
    methods = [m for m in ("GET", "POST") if m in rule.methods]
    arguments = sorted(rule.arguments)
    query_names = list(QUERY_NAMES) + fab_query_names(app, rule.endpoint)

    @fuzz_settings(ROUTE_EXAMPLES)
    @given(
        method=st.sampled_from(methods),
        path=st.fixed_dictionaries({a: path_junk for a in arguments}),
        keep_slashes=st.booleans(),
        query=query_strategy(query_names),
        fields=st.fixed_dictionaries({}, optional={name: junk for name in BLIND_FIELDS}),
    )
    def check(method, path, keep_slashes, query, fields):
        def build_url(values):
            return RULE_ARGUMENT.sub(lambda m: quote_path(values[m.group(1)], keep_slashes), rule.rule)

        post = method == "POST"
        session.send(failures, rule.endpoint, Probe(method, build_url, path, query, fields if post else {},
                                                     fixed={"csrf_token": csrf} if post else {}))

    digest_key(check, f"route {session.role} {rule.endpoint} {rule.rule}")
    check()


def fuzz_form(session: Session, failures: Failures, page_url: str, key: tuple, known: dict):
    """Post (or, for a GET form, query) one rendered form; its page is fetched again for a fresh token."""
    forms = page_forms(html_of(session.get(failures, f"form page {page_url}", page_url)) or "")
    form = next((f for f in forms if form_key(f, page_url) == key), None)
    if form is None:
        return
    action = urljoin(page_url, form["action"]) if form["action"] else page_url
    csrf = {f["name"]: f["value"] for f in form["fields"] if f["name"].endswith("csrf_token")}
    rendered = rendered_values(form)
    endpoint = f"form {key[1]} on {page_url}"

    @fuzz_settings(FORM_EXAMPLES)
    @given(values=form_values(form, known))
    def check(values):
        values = {k: v for k, v in values.items() if v is not OMIT}
        if form["method"] == "POST":
            probe = Probe("POST", lambda _: action, fields=values, base_fields=rendered, fixed=csrf)
        else:  # a GET form (search, filters): its fields go in the query string, files left out
            values = {k: v for k, v in values.items() if not isinstance(v, tuple)}
            probe = Probe("GET", lambda _: action, query=values, base_query=rendered)
        session.send(failures, endpoint, probe)

    for values in explicit_examples(form, known):
        check = example(values=values)(check)
    digest_key(check, f"form {session.role} {key}")
    check()


@dataclass
class Crawl:
    pages: list[str]  # every page the role opens with real ids
    forms: list[tuple[str, tuple]]  # (page URL, form key) of each distinct form
    known: dict[str, set]  # rendered values by field name: plausible values for the same field elsewhere


def crawl(app, session: Session, ids: dict, failures: Failures, when: str = "") -> Crawl:
    """The pages this role can open with real ids, and the forms on them (a page answering 500 is a failure)."""
    result, seen = Crawl([], [], {}), set()
    for rule in sorted(app.url_map.iter_rules(), key=walk_order):
        if "GET" not in rule.methods or rule.endpoint in WALKED_LAST or rule.endpoint.endswith(".static"):
            continue
        url = real_url(app, rule, ids)
        if url is None:
            continue
        html = html_of(session.get(failures, f"{rule.endpoint}{when}", url))
        if html is None:
            continue
        result.pages.append(url)
        for form in page_forms(html):
            for item in form["fields"]:
                if item["value"] and not item["name"].endswith("csrf_token") and item["kind"] != "hidden":
                    result.known.setdefault(item["name"].rpartition("-")[2], set()).add(item["value"])
            key = form_key(form, url)
            if key in seen or "/logout" in key[1] or "/lang/" in key[1]:
                continue
            seen.add(key)
            result.forms.append((url, key))
    # Forms that delete, close the account or change credentials go last: the others still find their rows.
    last = ("/delete/", "/fermer", "/mot-de-passe", "/email", "action_post")
    result.forms.sort(key=lambda item: any(word in item[1][1] for word in last))
    return result


def revisit(app, role: str, ids: dict, failures: Failures):
    """Open every page again as `role`: junk that a form accepted must not break a page later."""
    crawl(app, Session(app, role), ids, failures, when=" (opened after the forms were posted)")


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    application = make_app(f"sqlite:///{tmp / 'fuzz.db'}", tmp)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def demo_ids(fuzz_app):
    """A fresh demo landlord for each role's run; returns the real ids of the tenant's rows."""
    from app.models import Household
    from app.services.demo import client_number, seed_demo

    wipe(fuzz_app)
    with fuzz_app.app_context():
        seed_demo(8, echo=lambda *_: None)
        household_id = db.session.scalar(sa.select(Household.id).where(Household.client_number == client_number(0)))
        db.session.remove()
    yield real_ids(fuzz_app, household_id)
    wipe(fuzz_app)


@pytest.mark.parametrize("role", list(ROLES))
def test_no_route_answers_500_to_junk(fuzz_app, demo_ids, role):
    session = Session(fuzz_app, role)
    csrf = session.csrf_token()
    failures = Failures()
    for rule in sorted(fuzz_app.url_map.iter_rules(), key=walk_order):
        fuzz_route(fuzz_app, session, failures, rule, csrf)
        if "POST" in rule.methods and not session.signed_in():
            session.sign_in()
            csrf = session.csrf_token()
    if failures:
        pytest.fail(failures.report(), pytrace=False)


@pytest.mark.parametrize("role", list(ROLES))
def test_no_form_answers_500_to_junk(fuzz_app, demo_ids, role):
    session = Session(fuzz_app, role)
    failures = Failures()
    found = crawl(fuzz_app, session, demo_ids, failures)
    assert found.forms, f"no form found for {role}"
    for page_url, key in found.forms:
        fuzz_form(session, failures, page_url, key, found.known)
        if not session.signed_in():
            session.sign_in()
    for who in ("tenant", "staff") if role != "anonymous" else ("staff",):  # a visitor's forms reach staff lists
        revisit(fuzz_app, who, demo_ids, failures)
    if failures:
        pytest.fail(failures.report(), pytrace=False)
