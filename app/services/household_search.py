"""Find a household from one box: a client number, a lease number (`L/123456` or digits), a name (accents and case
do not matter), an e-mail address, a phone number or a street.

Every household has search terms (`HouseholdSearchTerm`), normalised as `normalize` does; a query is normalised the
same way and looked up by prefix as a range on the term index (`term >= q AND term < q || '\\x7f'`, an index range
scan on PostgreSQL and SQLite alike, never a scan of the households). `%`, `_`, `'` and `\\` are not wildcards or
quotes here: they are removed by the normalisation, and values are bound parameters.

The terms follow the data: a session hook notes the households whose signatory, occupants, leases, units or portal
account changed in a flush, and rewrites their terms before the commit (`_remember`, `_rewrite_before_commit`).
Bulk writes that bypass the ORM (the demo seed, imports) call `reindex(ids)`; `flask reindex-households` rebuilds the
whole table in sets.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import islice

import sqlalchemy as sa
from flask_appbuilder.security.sqla.models import User
from flask_babel import lazy_gettext as _l
from sqlalchemy import event
from sqlalchemy.orm import Session, selectinload

from app.extensions import db
from app.models import Household, HouseholdSearchTerm, Lease, Occupant, TenantAccount, Unit

MIN_LENGTH, MAX_LENGTH = 2, 100
MAX_RESULTS = 20
TERM_LENGTH = 120
# Words of a street that say nothing on their own: « rue » would find every household.
STREET_WORDS = {"rue", "avenue", "av", "boulevard", "bd", "bld", "chemin", "allee", "impasse", "place", "route",
                "cours", "quai", "square", "residence", "res", "batiment", "bat", "cite", "rond", "point", "voie",
                "de", "du", "des", "la", "le", "les", "l", "d", "et", "sur", "sous", "aux", "au"}
_SEPARATORS = re.compile(r"[^a-z0-9@.]+")  # « Lefèvre-Dubœuf » is two words
_SPACES = re.compile(r"\s+")
_LEASE = re.compile(r"^l\s*/?\s*(\d+)$")
_PHONE_CHARS = re.compile(r"[\s.\-()/]")


class SearchError(ValueError):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def normalize(text: str | None) -> str:
    """Lower case, no accents (« Gérard » → « gerard », « Œ » → « oe »), punctuation turned into spaces (but for
    what an e-mail address holds), single spaces."""
    if not text:
        return ""
    text = text.replace("œ", "oe").replace("Œ", "oe").replace("æ", "ae").replace("Æ", "ae").replace("ß", "ss")
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode()
    return _SPACES.sub(" ", _SEPARATORS.sub(" ", ascii_text.lower())).strip()


def phone_digits(phone: str | None) -> str:
    """A French phone number as its ten national digits (`+33 6 12…` → `0612…`), or its digits as typed."""
    digits = re.sub(r"\D", "", phone or "")
    if digits.startswith("0033"):
        digits = "0" + digits[4:]
    elif digits.startswith("33") and len(digits) == 11:
        digits = "0" + digits[2:]
    return digits


def household_terms(household: Household) -> set[str]:
    """Every term a household is found by (its occupants, leases' units and account's user loaded)."""
    people = [(household.signatory_first_name, household.signatory_last_name)]
    people += [(occupant.first_name, occupant.last_name) for occupant in household.occupants]
    user = household.account.user if household.account else None
    return terms_of(household.client_number, people, [household.email, user.email if user else None],
                    household.phone, [household.billing_street] + [lease.unit.street for lease in household.leases],
                    [lease.number for lease in household.leases])


def terms_of(client_number: str, people: list[tuple[str, str]], emails: list[str | None], phone: str | None,
             streets: list[str], lease_numbers: list[str]) -> set[str]:
    """The terms of one household from plain values (also used by the migration that fills the table)."""
    terms = {client_number, phone_digits(phone), *lease_numbers}
    for first, last in people:
        first, last = normalize(first), normalize(last)
        terms.update({last, first, f"{last} {first}", f"{first} {last}"})
        terms.update(word for word in last.split() if len(word) > 1)  # « dupont martin » is found by « martin »
    terms.update(normalize(email) for email in emails if email)
    for street in streets:
        street = normalize(street)
        without_number = re.sub(r"^\d+\s*(bis|ter)?\s*", "", street)
        terms.update({street, without_number})
        terms.update(word for word in without_number.split() if len(word) > 2 and word not in STREET_WORDS)
    return {term[:TERM_LENGTH] for term in terms if term and len(term) >= MIN_LENGTH}


def query_term(text: str) -> str:
    """The normalised prefix to look up for what staff typed; SearchError with a message for what cannot be one."""
    text = (text or "").strip()
    if len(text) > MAX_LENGTH:
        raise SearchError(_l("Tapez %(max)s caractères au plus : un nom, un numéro, une adresse.", max=MAX_LENGTH))
    compact = _PHONE_CHARS.sub("", text)
    if re.fullmatch(r"\+?\d+", compact):  # digits: a client, lease or phone number, spaced or dotted as people do
        term = phone_digits(compact) if compact.startswith(("+", "0033")) else compact
    else:
        term = normalize(text)
        lease = _LEASE.match(term)
        if lease:
            term = lease.group(1)
    if len(term) < MIN_LENGTH:
        raise SearchError(_l("Tapez au moins %(min)s lettres ou chiffres.", min=MIN_LENGTH))
    return term


@dataclass
class Found:
    households: list[Household]
    more: bool  # more than MAX_RESULTS matched: the list is cut, the query needs narrowing


def search(text: str, scope: sa.ColumnElement | None = None) -> Found:
    """Households whose terms start with the query, by client number; `scope` (a condition on Household) limits
    them to what the staff member may see."""
    term = query_term(text)
    ids = sa.select(HouseholdSearchTerm.household_id).where(
        HouseholdSearchTerm.term >= term, HouseholdSearchTerm.term < term + "\x7f").distinct()
    query = sa.select(Household).where(Household.id.in_(ids)).order_by(Household.signatory_last_name,
                                                                       Household.client_number)
    if scope is not None:
        query = query.where(scope)
    households = db.session.scalars(query.limit(MAX_RESULTS + 1).options(
        selectinload(Household.leases).selectinload(Lease.unit), selectinload(Household.agency))).all()
    return Found(households[:MAX_RESULTS], len(households) > MAX_RESULTS)


# --- keeping the terms up to date ----------------------------------------------------------------------------------

def reindex(household_ids, batch: int = 2000) -> int:
    """Rewrite the terms of these households, in sets (one delete and one multi-row insert per set)."""
    ids, count = iter(sorted(set(household_ids))), 0
    while chunk := list(islice(ids, batch)):
        households = db.session.scalars(sa.select(Household).where(Household.id.in_(chunk)).options(
            selectinload(Household.occupants), selectinload(Household.leases).selectinload(Lease.unit),
            selectinload(Household.account).selectinload(TenantAccount.user))
            .execution_options(populate_existing=True)).all()  # collections as the database has them now
        rows = [{"household_id": h.id, "term": term} for h in households for term in sorted(household_terms(h))]
        db.session.execute(sa.delete(HouseholdSearchTerm).where(HouseholdSearchTerm.household_id.in_(chunk)))
        if rows:
            db.session.execute(sa.insert(HouseholdSearchTerm), rows)
        count += len(households)
    return count


def reindex_all(batch: int = 2000) -> int:
    """Every household (after an import, or to repair the table): committed set by set."""
    last, count = 0, 0
    while True:
        chunk = db.session.scalars(sa.select(Household.id).where(Household.id > last).order_by(Household.id)
                                   .limit(batch)).all()
        if not chunk:
            return count
        count += reindex(chunk, batch)
        db.session.commit()
        last = chunk[-1]


_PENDING = "household_search_pending"


def _households_of(obj) -> set[int]:
    if isinstance(obj, Household):
        return {obj.id}
    if isinstance(obj, (Occupant, Lease, TenantAccount)):
        return {obj.household_id}
    if isinstance(obj, Unit):
        return set(db.session.scalars(sa.select(Lease.household_id).where(Lease.unit_id == obj.id)))
    if isinstance(obj, User) and sa.inspect(obj).attrs.email.history.has_changes():  # not at each login
        return set(db.session.scalars(sa.select(TenantAccount.household_id).where(TenantAccount.user_id == obj.id)))
    return set()


@event.listens_for(Session, "after_flush")
def _remember(session: Session, flush_context) -> None:
    watched = (Household, Occupant, Lease, TenantAccount, Unit, User)
    changed = [obj for obj in (*session.new, *session.dirty, *session.deleted) if isinstance(obj, watched)]
    if not changed:
        return
    pending = session.info.setdefault(_PENDING, set())
    with session.no_autoflush:
        for obj in changed:
            if isinstance(obj, Household) and obj in session.deleted:
                continue  # its terms go with it (ON DELETE CASCADE, and the delete below)
            pending |= {i for i in _households_of(obj) if i is not None}


@event.listens_for(Session, "before_commit")
def _rewrite_before_commit(session: Session) -> None:
    session.flush()  # what is still pending notes its households
    pending = session.info.pop(_PENDING, None)
    if pending:
        existing = session.scalars(sa.select(Household.id).where(Household.id.in_(pending))).all()
        if existing:
            reindex(existing)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
