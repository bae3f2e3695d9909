"""Staff accountability: every change a staff member makes to a household's data is recorded as an `AuditEvent`
(who, when, which row, the values before and after, a short sentence), whatever screen or service made it.

One session hook does it (`_record`, after each flush): it reads the rows the flush wrote, and inserts the events in
the same transaction, so a rolled-back change leaves no event and a recorded change always has one. Only changes made
in a request by a signed-in staff member (or administrator) are recorded; a tenant's own changes and the jobs' are
not (requests keep their own timeline, jobs their runs).

What is never stored: password hashes, tokens, and encrypted columns (`EncryptedString`), except in the masked form
the model offers (`masked_iban`). What is not seen: writes that bypass the ORM (`sa.update(...)`, bulk inserts) and
changes to many-to-many links (the leases a mandate covers).

Events are never changed: no screen offers it, and the ORM refuses to update or delete one (`AuditTrailError`).
"""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace

import sqlalchemy as sa
from flask import has_request_context
from flask_appbuilder.security.sqla.models import User
from flask_babel import force_locale, gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.dbtypes import EncryptedString
from app.extensions import db
from app.models import (
    AuditEvent, DirectDebitMandate, Document, Household, HouseholdNote, InsuranceCertificate, LabelledEnum, Lease,
    LedgerEntry, Occupant, PaymentTransaction, TenantAccount, TenantRequest, utcnow,
)
from app.security import is_staff

CREATED, CHANGED, DELETED = "created", "changed", "deleted"
STATUS_CHANGED, ACCOUNT_DISABLED, ACCOUNT_ENABLED = "status_changed", "account_disabled", "account_enabled"
ACTIVATION_RESENT = "activation_resent"

# What a household's data is, and how a sentence names each kind of row.
ENTITY_LABELS = {
    Household: _l("foyer"),
    Occupant: _l("occupant"),
    Lease: _l("contrat"),
    LedgerEntry: _l("écriture"),
    Document: _l("document"),
    InsuranceCertificate: _l("attestation d'assurance"),
    DirectDebitMandate: _l("mandat de prélèvement"),
    TenantAccount: _l("compte de l'espace locataire"),
    TenantRequest: _l("demande"),
    PaymentTransaction: _l("paiement par carte"),
    HouseholdNote: _l("note"),
}
WATCHED = tuple(ENTITY_LABELS)
USER_COLUMNS = ("active",)  # of a portal user (ab_user), recorded on the household of its account
# Bookkeeping nobody needs to read back (ids, timestamps the row keeps anyway, file storage details).
NOISE = frozenset({"id", "household_id", "created_at", "updated_at", "stored_name", "receipt_stored_name",
                   "content_type", "size_bytes", "sha256"})
SECRET_WORDS = ("password", "token", "secret")
SUMMARY_LENGTH = 300


class AuditTrailError(RuntimeError):
    """Something tried to change or delete a recorded event."""


def _author_id() -> int | None:
    """The signed-in staff member making the change, or None when it is not one (tenant, job, command line)."""
    if not has_request_context() or not is_staff(current_user):
        return None
    return current_user.id


def _plain(column: sa.Column, value):
    """A value as JSON keeps it: enums by name, amounts as text with their decimals, dates in ISO 8601."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Decimal):
        scale = getattr(column.type, "scale", None)
        return f"{value:.{scale}f}" if scale is not None else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return json.loads(json.dumps(value, default=str))


def _recorded_columns(obj) -> list[tuple[str, object]]:
    """(attribute, how to store its value) for each column of `obj` that may be recorded."""
    if isinstance(obj, User):
        return [(key, lambda value: value) for key in USER_COLUMNS]
    columns = []
    for attr in sa.inspect(type(obj)).column_attrs:
        key, column = attr.key, attr.columns[0]
        if key in NOISE or any(word in key for word in SECRET_WORDS):
            continue
        if isinstance(column.type, EncryptedString):
            masked = getattr(type(obj), f"masked_{key}", None)
            if isinstance(masked, property):  # the model's own masking, applied to the old and new values
                columns.append((key, lambda value, key=key, masked=masked:
                                masked.fget(SimpleNamespace(**{key: value})) if value else None))
            continue
        columns.append((key, lambda value, column=column: _plain(column, value)))
    return columns


def _blank(value) -> bool:
    return value is None or value == ""


def _changes(obj, state, kind: str) -> dict:
    """{"column": [before, after]} of what the flush wrote for `obj`."""
    changes = {}
    for key, store in _recorded_columns(obj):
        if kind == CHANGED:
            history = state.attrs[key].history
            if not history.has_changes():
                continue
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
        else:
            value = state.dict.get(key)  # what the row holds: no load in the middle of a flush
            before, after = (None, value) if kind == CREATED else (value, None)
        if _blank(before) and _blank(after) or before == after:
            continue  # a form that sends "" for an empty field changed nothing
        changes[key] = [store(before), store(after)]
    return changes


def _row_id(state) -> int | None:
    """The row's id without loading anything (a new row has it in its dict, not yet as its identity)."""
    return state.identity[0] if state.identity else state.dict.get("id")


def _household_id(session: Session, obj, state, kind: str) -> int | None:
    if isinstance(obj, Household):
        return _row_id(state)
    if isinstance(obj, User):
        return session.connection().scalar(
            sa.select(TenantAccount.household_id).where(TenantAccount.user_id == _row_id(state)))
    household_id = state.dict.get("household_id")
    if household_id is None and kind != DELETED:
        household_id = obj.household_id  # expired since the last commit: read again (a deleted row cannot be)
    return household_id


def _name(obj) -> str:
    if isinstance(obj, LedgerEntry):
        return obj.label
    if isinstance(obj, User):
        return obj.email
    return str(obj)


def _label(value) -> str:
    if isinstance(value, LabelledEnum):
        return str(value.label)
    return "—" if value is None else str(value)


def _action_and_summary(obj, state, kind: str, changes: dict) -> tuple[str, str]:
    """The event's action and its sentence, in French whatever the staff member's language."""
    name = _name(obj)
    if isinstance(obj, User):
        if changes["active"][1]:
            return ACCOUNT_ENABLED, _("Compte de l'espace locataire réactivé : %(email)s", email=name)
        return ACCOUNT_DISABLED, _("Compte de l'espace locataire désactivé : %(email)s", email=name)
    what = ENTITY_LABELS[type(obj)]
    if kind == CREATED:
        return CREATED, _("Ajout : %(what)s « %(name)s »", what=what, name=name)
    if kind == DELETED:
        return DELETED, _("Suppression : %(what)s « %(name)s »", what=what, name=name)
    if "status" in changes:
        history = state.attrs["status"].history
        before = history.deleted[0] if history.deleted else None
        return STATUS_CHANGED, _("Changement de statut : %(what)s « %(name)s » : %(before)s → %(after)s",
                                 what=what, name=name, before=_label(before), after=_label(obj.status))
    return CHANGED, _("Modification : %(what)s « %(name)s »", what=what, name=name)


def _candidates(session: Session) -> list[tuple[object, str]]:
    found = []
    for kind, objects in ((CREATED, session.new), (CHANGED, session.dirty), (DELETED, session.deleted)):
        for obj in objects:
            if isinstance(obj, WATCHED):
                if not (kind == DELETED and isinstance(obj, Household)):  # its events keep it (foreign key)
                    found.append((obj, kind))
            elif isinstance(obj, User) and kind == CHANGED:
                found.append((obj, kind))
    return found


@event.listens_for(Session, "after_flush")
def _record(session: Session, flush_context) -> None:
    """After a flush, still inside it: the new rows have their ids, every attribute still has its history."""
    candidates = _candidates(session)
    if not candidates:
        return
    author = _author_id()
    if author is None:
        return
    now, rows = utcnow(), []
    with session.no_autoflush, force_locale("fr"):
        for obj, kind in candidates:
            state = sa.inspect(obj)
            changes = _changes(obj, state, kind)
            if not changes and kind == CHANGED:
                continue
            household_id = _household_id(session, obj, state, kind)
            if household_id is None:
                continue  # a staff member's own user row, or a portal user without an account
            action, summary = _action_and_summary(obj, state, kind, changes)
            rows.append({"created_at": now, "user_id": author, "household_id": household_id,
                         "entity_type": state.mapper.local_table.name, "entity_id": _row_id(state),
                         "action": action, "changes": changes, "summary": summary[:SUMMARY_LENGTH]})
    if rows:
        session.connection().execute(sa.insert(AuditEvent.__table__), rows)


def record(household_id: int, action: str, summary, entity_type: str, entity_id: int) -> None:
    """An action that changes no row of the household's data but belongs to its history (an activation e-mail
    sent again), by the signed-in staff member; written with the caller's transaction. `summary` is a lazy string,
    recorded in French like the others."""
    author = _author_id()
    if author is not None:
        with force_locale("fr"):
            text = str(summary)[:SUMMARY_LENGTH]
        db.session.add(AuditEvent(created_at=utcnow(), user_id=author, household_id=household_id,
                                  entity_type=entity_type, entity_id=entity_id, action=action, changes={},
                                  summary=text))


# --- never changed ---------------------------------------------------------------------------------------------------

@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
@event.listens_for(HouseholdNote, "before_update")
@event.listens_for(HouseholdNote, "before_delete")
def _refuse_change(mapper, connection, target) -> None:
    raise AuditTrailError(f"{mapper.local_table.name} rows are never changed or deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_change(execute_state) -> None:
    if (execute_state.is_update or execute_state.is_delete) and any(
            mapper.class_ in (AuditEvent, HouseholdNote) for mapper in execute_state.all_mappers):
        raise AuditTrailError("audit events and household notes are never changed or deleted")
