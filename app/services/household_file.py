"""The household page of the back office (« fiche foyer »): what staff see of one household, and what they do from
there that no other service does (a note, a payment promise, a document attached, a request opened for the tenant).

`load` reads the page in a few indexed queries (each list is capped; the full lists are the back office's filtered
lists). Each action is one transaction, audited by app.services.audit like any staff change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import joinedload, selectinload

from app.extensions import db
from app.mail import external_url, queue_mail
from app.models import (
    AuditEvent, AuthorSide, DirectDebitMandate, Document, DocumentKind, Household, HouseholdNote, Lease, LedgerEntry,
    NoteKind, PaymentTransaction, RequestCategory, TenantAccount, TenantRequest, ZERO,
)
from app.services import accounts, documents, insurance, ledger, requests

RECENT = 10  # movements, documents, card payments shown; the lists behind « Tout voir » have the rest
HISTORY = 15
MAX_NOTE = 2000
MAX_PROMISE = Decimal("99999.99")
PROMISE_HORIZON = timedelta(days=366)
MAX_TITLE = 200

KEPT, PENDING, BROKEN = "kept", "pending", "broken"


class FileError(ValueError):
    """Input an action cannot take, with the field it is about."""

    def __init__(self, message: str, field_name: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field_name


@dataclass
class Promise:
    note: HouseholdNote
    paid: Decimal  # tenant payments received from the day of the promise to its date
    state: str  # KEPT, PENDING or BROKEN


@dataclass
class HouseholdFile:
    household: Household
    today: date
    balance: Decimal
    overdue: Decimal
    movements: list[LedgerEntry]
    documents: list[Document]
    requests: list[TenantRequest]
    insurance_state: str
    certificate: object
    mandates: list[DirectDebitMandate]
    payments: list[PaymentTransaction]
    notes: list[HouseholdNote]
    promises: dict[int, Promise]
    history: list[AuditEvent]
    deactivation: date | None
    open_requests: int = field(init=False)

    def __post_init__(self):
        self.open_requests = sum(r.status in requests.OPEN_STATUSES for r in self.requests)


def load(household: Household, today: date) -> HouseholdFile:
    """Everything the page shows, each list newest first."""
    household = db.session.scalar(sa.select(Household).where(Household.id == household.id).options(
        joinedload(Household.agency), joinedload(Household.account).joinedload(TenantAccount.user),
        selectinload(Household.leases).joinedload(Lease.unit), selectinload(Household.occupants)))
    hid = household.id

    def newest(model, *order, limit=RECENT, options=()):
        return list(db.session.scalars(sa.select(model).where(model.household_id == hid).options(*options)
                                       .order_by(*order).limit(limit)))

    insurance_state, certificate = insurance.status(household, today)
    notes = newest(HouseholdNote, HouseholdNote.created_at.desc(), HouseholdNote.id.desc(), limit=None,
                   options=[selectinload(HouseholdNote.author)])
    return HouseholdFile(
        household=household, today=today, balance=ledger.household_balance(hid),
        overdue=ledger.household_overdue(hid, today),
        movements=newest(LedgerEntry, LedgerEntry.entry_date.desc(), LedgerEntry.id.desc(),
                         options=[selectinload(LedgerEntry.lease)]),
        documents=newest(Document, Document.created_at.desc(), Document.id.desc()),
        requests=requests.household_requests(hid),
        insurance_state=insurance_state, certificate=certificate,
        mandates=newest(DirectDebitMandate, DirectDebitMandate.created_at.desc(), limit=None),
        payments=newest(PaymentTransaction, PaymentTransaction.created_at.desc(), PaymentTransaction.id.desc()),
        notes=notes, promises=promises(hid, notes, today),
        history=newest(AuditEvent, AuditEvent.created_at.desc(), AuditEvent.id.desc(), limit=HISTORY,
                       options=[selectinload(AuditEvent.user)]),
        deactivation=accounts.deactivation_date(household),
    )


def promises(household_id: int, notes: list[HouseholdNote], today: date) -> dict[int, Promise]:
    """Whether each payment promise was kept: the tenant's payments (card, direct debit, transfer, cheque) dated from
    the day of the promise to the promised day reach the amount (one query for all of them)."""
    made = [note for note in notes if note.kind is NoteKind.PAYMENT_PROMISE]
    if not made:
        return {}
    start = min(note.created_at.date() for note in made)
    paid = db.session.execute(sa.select(LedgerEntry.entry_date, LedgerEntry.amount).where(
        LedgerEntry.household_id == household_id, LedgerEntry.kind.in_(ledger.TENANT_PAYMENT_KINDS),
        LedgerEntry.entry_date >= start)).all()
    result = {}
    for note in made:
        total = sum((amount for day, amount in paid if note.created_at.date() <= day <= note.promised_on), ZERO)
        state = KEPT if total >= note.promised_amount else PENDING if today <= note.promised_on else BROKEN
        result[note.id] = Promise(note, total, state)
    return result


# --- actions -------------------------------------------------------------------------------------------------------

def add_note(household: Household, kind: NoteKind, body: str, amount: Decimal | None, promised_on: date | None,
             today: date, author_id: int) -> HouseholdNote:
    body = (body or "").strip()
    if not body:
        raise FileError(_("Écrivez la note."), "body")
    if len(body) > MAX_NOTE:
        raise FileError(_("La note est trop longue (2 000 caractères au plus)."), "body")
    if kind is NoteKind.PAYMENT_PROMISE:
        if amount is None or not amount.is_finite() or not ZERO < amount <= MAX_PROMISE:
            raise FileError(_("Saisissez le montant promis, entre 0,01 € et 99 999,99 €."), "amount")
        if amount != ledger.cents(amount):
            raise FileError(_("Le montant a deux décimales au plus."), "amount")
        if promised_on is None or not today <= promised_on <= today + PROMISE_HORIZON:
            raise FileError(_("Saisissez la date promise : aujourd'hui ou plus tard, dans l'année."), "promised_on")
    elif amount is not None or promised_on is not None:
        raise FileError(_("Une simple note n'a ni montant ni date : choisissez « Promesse de paiement » ou videz "
                          "ces champs."), "kind")
    note = HouseholdNote(household_id=household.id, kind=kind, body=body, promised_amount=amount,
                         promised_on=promised_on, author_id=author_id)
    db.session.add(note)
    db.session.commit()
    return note


def attach_document(household: Household, lease_id: int | None, title: str, checked, now: datetime,
                    author_id: int) -> Document:
    """A PDF staff put in the tenant's documents (a letter, a certificate, a plan): the tenant finds it under
    « Autres documents » and, if they have an account, is told by e-mail."""
    title = (title or "").strip()
    if not title:
        raise FileError(_("Donnez un titre au document : le locataire le verra."), "title")
    if len(title) > MAX_TITLE:
        raise FileError(_("Le titre est trop long (200 caractères au plus)."), "title")
    lease = None
    if lease_id is not None:
        lease = next((lease for lease in household.leases if lease.id == lease_id), None)
        if lease is None:
            raise FileError(_("Ce contrat n'est pas celui de ce foyer."), "lease")
    document = Document(household_id=household.id, lease_id=lease.id if lease else None, kind=DocumentKind.OTHER,
                        period=f"{now:%Y-%m}", title=title, created_by_id=author_id, created_at=now)
    documents.store_pdf(document, checked.data, checked.original_filename)
    db.session.add(document)
    account = household.account
    if account is not None and account.activated_at is not None and account.user.active:
        queue_mail(account.user.email, "document_added", account.locale, name=account.user.first_name,
                   title=title, link=external_url("TenantDocumentsView.index"))
    db.session.commit()
    return document


def open_request(household: Household, category: RequestCategory, subject: str, description: str, now: datetime,
                 staff_id: int) -> TenantRequest:
    """A request the tenant made at the counter or on the phone, opened for them: it is theirs (in their list, with
    the usual e-mails), and its first step says the agency wrote it."""
    if category not in requests.TENANT_CATEGORIES:
        raise FileError(_("Choisissez le type de la demande."), "category")
    subject, description = (subject or "").strip(), (description or "").strip()
    if not subject:
        raise FileError(_("Donnez un objet à la demande."), "subject")
    if not description:
        raise FileError(_("Décrivez la demande."), "description")
    request = requests.create_request(household, category, subject, description, now,
                                      lease=requests.dwelling_lease(household), author_id=staff_id,
                                      side=AuthorSide.STAFF)
    requests.notify_tenant(request, _l("Votre agence a enregistré cette demande pour vous."))
    db.session.commit()
    return request


def resend_activation(household: Household, now: datetime) -> None:
    account = household.account
    if account is None or not account.user.active or not accounts.staff_resend_activation(account, now):
        raise FileError(_("Ce compte n'attend pas d'activation : rien n'a été envoyé."))


def disable_account(household: Household, now: datetime) -> None:
    account = household.account
    if account is None or not account.user.active:
        raise FileError(_("Ce compte est déjà désactivé."))
    accounts.staff_disable(account, now)
