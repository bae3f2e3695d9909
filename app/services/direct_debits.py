"""The monthly direct-debit cycle, from the tenant's pre-notification to the money on the ledger and back.

1. Pre-notification (`prenotify`, after the rent call and daily): each active mandate gets one collection per
   month, with its date and amount told to the tenant at least SEPA_PRENOTIFICATION_DAYS before; each covered
   lease gets its share.
2. The file (`build_file`, by the daily job `SEPA_LEAD_DAYS` before the date, or by staff): the notified
   collections of one debit day go into one pain.008 whose <MsgId> is the one stored. What is collected is what was
   notified, or less if the tenant paid meanwhile; never more.
3. Settlement (`settle`, daily): on its collection date, and not before, a collection becomes ledger credits.
4. The bank's answers (`import_bank_answer`: pain.002, camt.054, camt.053) and rejects typed by staff
   (`record_reject`): a reject before the date cancels the collection, a return after it reverses the credits and
   withdraws the quittances they had paid.

Collection dates are TARGET2 business days (python-holidays' ECB calendar). Facts: shared/REFERENCE.md 2 and 5.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import holidays
import sqlalchemy as sa
from flask import current_app
from flask_babel import format_date, gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app import bank_answers, filestore, pain008
from app.extensions import db
from app.formatting import money
from app.mail import external_url, queue_mail
from app.models import (
    ZERO, BankFileImport, CollectionStatus, Direction, DirectDebitBatch, DirectDebitCollection, DirectDebitMandate,
    DirectDebitShare, EntryKind, Household, LedgerEntry, MandateStatus, TenantAccount, mandate_lease,
)
from app.services import documents, ledger
from app.services.sepa import DEBIT_DAYS, SepaError

log = logging.getLogger(__name__)
PENDING = (CollectionStatus.NOTIFIED, CollectionStatus.SUBMITTED)


# --- the TARGET2 calendar ------------------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _closed_days(year: int) -> holidays.HolidayBase:
    return holidays.financial_holidays("ECB", years=year)


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _closed_days(day.year)


def business_day_from(day: date) -> date:
    """`day` if the banks settle on it, else the next TARGET2 business day."""
    while not is_business_day(day):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int) -> date:
    for _step in range(count):
        day = business_day_from(day + timedelta(days=1))
    return day


def collection_date_for(debit_day: int, month: date) -> date:
    """The collection date of a debit day in `month`: that day, moved to the next business day when closed."""
    last = calendar.monthrange(month.year, month.month)[1]
    return business_day_from(month.replace(day=min(debit_day, last)))


def calendar_problem(rent_call_day: int, prenotification_days: int) -> str | None:
    """Why the rent call (which carries the pre-notification) cannot reach every debit day in time, or None."""
    if not 1 <= rent_call_day <= 28:
        return f"RENT_CALL_DAY must be between 1 and 28, got {rent_call_day}"
    shortest = 28 - rent_call_day + min(DEBIT_DAYS)  # a call in February for a debit on the 2nd of March
    if shortest < prenotification_days:
        return (f"RENT_CALL_DAY={rent_call_day} leaves {shortest} days before a debit on the {min(DEBIT_DAYS)} of "
                f"the next month, fewer than SEPA_PRENOTIFICATION_DAYS={prenotification_days}: call the rents on "
                f"day {28 + min(DEBIT_DAYS) - prenotification_days} at the latest")
    return None


def _month(period: str) -> date:
    year, month = (int(part) for part in period.split("-"))
    return date(year, month, 1)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _previous_month(day: date) -> date:
    return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)


# --- what each lease still owes ------------------------------------------------------------------------------------

def owed_by_lease(lease_ids: list[int]) -> dict[int, Decimal]:
    """What each lease owes, less what a pending direct debit will already collect (two grouped queries)."""
    balances = ledger.lease_balances(lease_ids)
    promised = {}
    for part in ledger.chunks(list(lease_ids)):
        pending = sa.select(DirectDebitShare.lease_id, sa.func.sum(DirectDebitShare.amount)).join(
            DirectDebitCollection).where(DirectDebitShare.lease_id.in_(part),
                                         DirectDebitCollection.status.in_(PENDING))
        promised.update({lease_id: ledger.cents(total) for lease_id, total in
                         db.session.execute(pending.group_by(DirectDebitShare.lease_id))})
    return {lease_id: balances.get(lease_id, ZERO) - promised.get(lease_id, ZERO) for lease_id in lease_ids}


# --- 1. pre-notification -------------------------------------------------------------------------------------------

def prenotify(today: date, now: datetime) -> int:
    """Create the collection of each active mandate for the months whose rent is called and whose collection
    date is still at least SEPA_PRENOTIFICATION_DAYS away, and tell the tenant the date and the amount."""
    notice_days = current_app.config["SEPA_PRENOTIFICATION_DAYS"]
    months = [today.replace(day=1), _next_month(today)]
    periods = [f"{month:%Y-%m}" for month in months]
    mandates = db.session.scalars(sa.select(DirectDebitMandate).where(
        DirectDebitMandate.status == MandateStatus.ACTIVE).options(
        selectinload(DirectDebitMandate.leases),
        selectinload(DirectDebitMandate.household).selectinload(Household.account)
        .selectinload(TenantAccount.user))).all()
    if not mandates:
        return 0
    lease_ids = sorted({lease.id for mandate in mandates for lease in mandate.leases})
    done = set(db.session.execute(sa.select(DirectDebitCollection.mandate_id, DirectDebitCollection.period).where(
        DirectDebitCollection.period.in_(periods))).all())
    called = set(db.session.execute(sa.select(LedgerEntry.lease_id, LedgerEntry.period).join(
        mandate_lease, mandate_lease.c.lease_id == LedgerEntry.lease_id).join(
        DirectDebitMandate, DirectDebitMandate.id == mandate_lease.c.mandate_id).where(
        LedgerEntry.kind == EntryKind.DUE_NOTICE, LedgerEntry.period.in_(periods),
        DirectDebitMandate.status == MandateStatus.ACTIVE)).all())
    owed = owed_by_lease(lease_ids)
    planned = []  # (mandate, period, collection date, {lease id: amount})
    for mandate in mandates:
        for month, period in zip(months, periods):
            collection_date = collection_date_for(mandate.debit_day, month)
            if (mandate.id, period) in done or (collection_date - today).days < notice_days:
                continue
            shares = {lease.id: owed[lease.id] for lease in mandate.leases
                      if (lease.id, period) in called and owed.get(lease.id, ZERO) > ZERO}
            if shares:
                planned.append((mandate, period, collection_date, shares))
                owed.update(dict.fromkeys(shares, ZERO))
    _insert_collections(planned, now)
    documents.forget_rendered_due_notices([(lease_id, period) for _m, period, _d, shares in planned
                                           for lease_id in shares])  # rendered before the debit was announced
    db.session.commit()
    log.info("direct debit: %d collections pre-notified", len(planned))
    return len(planned)


def _insert_collections(planned: list, now: datetime) -> None:
    """The collections and their shares in two set-based inserts, and the tenants' pre-notification mails."""
    if not planned:
        return
    rows = [dict(mandate_id=mandate.id, household_id=mandate.household_id, lease_id=mandate.lease_id,
                 period=period, amount=sum(shares.values(), ZERO), notified_amount=sum(shares.values(), ZERO),
                 collection_date=collection_date, notified_at=now, status=CollectionStatus.NOTIFIED,
                 sequence_type=_sequence(mandate),
                 end_to_end_id=f"EL{period.replace('-', '')}{secrets.token_hex(6).upper()}")
            for mandate, period, collection_date, shares in planned]
    db.session.execute(sa.insert(DirectDebitCollection), rows)  # executemany: RETURNING in order is row by row
    ids = {}
    for part in ledger.chunks([row["end_to_end_id"] for row in rows]):
        ids.update(db.session.execute(sa.select(DirectDebitCollection.end_to_end_id, DirectDebitCollection.id)
                                      .where(DirectDebitCollection.end_to_end_id.in_(part))).all())
    db.session.execute(sa.insert(DirectDebitShare), [
        dict(collection_id=ids[row["end_to_end_id"]], lease_id=lease_id, amount=amount)
        for row, (_m, _p, _d, shares) in zip(rows, planned) for lease_id, amount in shares.items()])
    link, ics = external_url("TenantPaymentView.index"), current_app.config["SEPA_CREDITOR_ID"]
    for row, (mandate, _period, collection_date, _shares) in zip(rows, planned):
        account = mandate.household.account
        if account is not None and account.user.active:
            queue_mail(account.user.email, "debit_notice", account.locale, name=account.user.first_name,
                       amount=row["amount"], date=collection_date, rum=mandate.reference, ics=ics, link=link)


def _sequence(mandate: DirectDebitMandate) -> str:
    """FRST until a collection of the mandate has been settled (a rejected first one stays FRST), then RCUR."""
    return "FRST" if mandate.last_collection_on is None else "RCUR"


def collection_for(lease_id: int, period: str) -> DirectDebitCollection | None:
    """The direct debit that pays a lease's month (for its due notice), if any."""
    return db.session.scalar(sa.select(DirectDebitCollection).join(DirectDebitShare).where(
        DirectDebitShare.lease_id == lease_id, DirectDebitCollection.period == period,
        DirectDebitCollection.status != CollectionStatus.CANCELLED))


def upcoming(household_id: int, today: date) -> list[DirectDebitCollection]:
    """The household's debits announced or sent and not yet settled (the Paiement page's « à venir »)."""
    return list(db.session.scalars(sa.select(DirectDebitCollection).where(
        DirectDebitCollection.household_id == household_id, DirectDebitCollection.status.in_(PENDING))
        .order_by(DirectDebitCollection.collection_date)))


# --- 2. the collection file ----------------------------------------------------------------------------------------

@dataclass
class FilePreview:
    period: str
    debit_day: int
    collection_date: date
    count: int
    total: Decimal
    batch: DirectDebitBatch | None


def earliest_collection(today: date) -> date:
    """A file reaches the bank at least SEPA_MIN_BUSINESS_DAYS business days before its collection date."""
    return add_business_days(today, current_app.config["SEPA_MIN_BUSINESS_DAYS"])


def _file_date(period: str, debit_day: int, today: date) -> date:
    return max(collection_date_for(debit_day, _month(period)), earliest_collection(today))


def _notified(period: str, debit_day: int) -> list[DirectDebitCollection]:
    return list(db.session.scalars(sa.select(DirectDebitCollection).join(DirectDebitMandate).where(
        DirectDebitCollection.period == period, DirectDebitMandate.debit_day == debit_day,
        DirectDebitCollection.status == CollectionStatus.NOTIFIED).options(
        selectinload(DirectDebitCollection.shares).selectinload(DirectDebitShare.lease),
        selectinload(DirectDebitCollection.mandate), selectinload(DirectDebitCollection.household))
        .order_by(DirectDebitCollection.id)))


def preview(period: str, debit_day: int, today: date) -> FilePreview:
    """What a file for this debit day would hold (staff see it before building), or the file already built."""
    batch = db.session.scalar(sa.select(DirectDebitBatch).where(
        DirectDebitBatch.period == period, DirectDebitBatch.debit_day == debit_day,
        DirectDebitBatch.rejected_reason.is_(None)))
    if batch is not None:
        return FilePreview(period, debit_day, batch.collection_date, batch.count, batch.total, batch)
    totals = [sum(take.values(), ZERO) for take in _takes(_notified(period, debit_day)).values()]
    lines = [total for total in totals if total > ZERO]
    return FilePreview(period, debit_day, _file_date(period, debit_day, today), len(lines),
                       sum(lines, ZERO), None)


def _takes(collections: list[DirectDebitCollection]) -> dict[int, dict[int, Decimal]]:
    """What each collection takes now, share by share: at most what was notified, at most what the lease owes."""
    owed = owed_by_lease(sorted({share.lease_id for c in collections for share in c.shares}))
    takes = {}
    for collection in collections:
        active = collection.mandate.status is MandateStatus.ACTIVE
        # owed_by_lease subtracted this share (it is pending): add it back before comparing.
        takes[collection.id] = {share.id: max(min(share.amount, owed.get(share.lease_id, ZERO) + share.amount), ZERO)
                                if active else ZERO for share in collection.shares}
    return takes


def build_file(period: str, debit_day: int, today: date, now: datetime,
               user_id: int | None = None) -> DirectDebitBatch:
    """Put the notified collections of one debit day in a pain.008 file, store it, and mark them sent."""
    config = current_app.config
    collections = _notified(period, debit_day)
    takes = _takes(collections)
    amounts = {collection_id: sum(take.values(), ZERO) for collection_id, take in takes.items()}
    lines = [c for c in collections if amounts[c.id] > ZERO]
    label = format_date(collection_date_for(debit_day, _month(period)), "d MMMM yyyy")
    if not lines:
        raise SepaError(_("Aucun prélèvement à envoyer pour le %(date)s.", date=label))
    collection_date = _file_date(period, debit_day, today)
    message_id = f"EL{now:%Y%m%d%H%M%S}{secrets.token_hex(4).upper()}"
    batch = DirectDebitBatch(collection_date=collection_date, period=period, debit_day=debit_day,
                             schema=config["SEPA_SCHEMA"], message_id=message_id, count=len(lines),
                             total=sum((amounts[c.id] for c in lines), ZERO), created_by_id=user_id,
                             stored_name=f"{secrets.token_hex(16)}.xml", created_at=now)
    db.session.add(batch)
    try:
        db.session.flush()  # the unique (period, debit_day): a second build, even a concurrent one, stops here
    except IntegrityError:
        db.session.rollback()
        raise SepaError(_("Le fichier du %(date)s est déjà préparé.", date=label)) from None
    for collection in collections:
        amount = amounts[collection.id]
        if amount <= ZERO:
            collection.status = CollectionStatus.CANCELLED
            continue
        for share in collection.shares:
            share.amount = takes[collection.id][share.id]
        collection.amount, collection.batch_id = amount, batch.id
        collection.collection_date, collection.status = collection_date, CollectionStatus.SUBMITTED
        collection.sequence_type = _sequence(collection.mandate)
    xml = pain008.collection_file(_creditor(), config["SEPA_CREDITOR_ID"], batch.schema, message_id,
                                  collection_date, [_debit(c) for c in lines])
    filestore.save(batch_key(batch), xml)
    db.session.commit()
    log.info("direct debit file %s (%s day %s): %d debits, %s", batch.message_id, period, debit_day, batch.count,
             batch.total)
    return batch


def _creditor() -> pain008.Party:
    config = current_app.config
    return pain008.Party(config["SEPA_CREDITOR_NAME"], config["SEPA_CREDITOR_IBAN"], config["SEPA_CREDITOR_BIC"],
                         config["SEPA_CREDITOR_STREET"], config["SEPA_CREDITOR_POSTCODE"],
                         config["SEPA_CREDITOR_TOWN"])


def _debit(collection: DirectDebitCollection) -> pain008.Debit:
    mandate, household = collection.mandate, collection.household
    debtor = pain008.Party(mandate.account_holder, mandate.iban, mandate.bic,
                           mandate.holder_street or household.billing_street,
                           mandate.holder_postcode or household.billing_postcode,
                           mandate.holder_city or household.billing_city, mandate.holder_country or "FR")
    leases = " ".join(f"L/{share.lease.number}" for share in collection.shares)
    return pain008.Debit(debtor, collection.amount, collection.sequence_type, mandate.reference,
                         mandate.signed_on or mandate.activated_at.date(), collection.end_to_end_id,
                         f"Loyer {collection.period} {leases}")


BATCH_FOLDER = "sepa"  # the key prefix of pain.008 files in the file store (their folder under FILES_DIR)


def batch_key(batch: DirectDebitBatch) -> str:
    """The key of a batch's pain.008 file in the file store."""
    return f"{BATCH_FOLDER}/{batch.stored_name}"


def file_months(today: date) -> list[date]:
    """The months whose files can be built today: last month (catch-up), this month and the next."""
    return [_previous_month(today), today.replace(day=1), _next_month(today)]


def due_files(today: date, now: datetime) -> int:
    """The daily job: build every file whose day has come (SEPA_LEAD_DAYS before its date) and that was not built,
    including the ones a stopped scheduler missed; a built file is never built again."""
    lead = timedelta(days=current_app.config["SEPA_LEAD_DAYS"])
    built = 0
    for month in file_months(today):
        for day in DEBIT_DAYS:
            period = f"{month:%Y-%m}"
            if collection_date_for(day, month) - lead > today or preview(period, day, today).batch is not None:
                continue
            try:
                built += build_file(period, day, today, now).count
            except SepaError:
                continue  # nothing notified for that day
    return built


# --- 3. settlement -------------------------------------------------------------------------------------------------

def settle(today: date, now: datetime) -> int:
    """The daily job: each collection sent to the bank whose date has come becomes ledger credits, once (the
    credits are inserted in one statement; their unique `external_ref` refuses a second settlement)."""
    collections = db.session.scalars(sa.select(DirectDebitCollection).where(
        DirectDebitCollection.status == CollectionStatus.SUBMITTED,
        DirectDebitCollection.collection_date <= today).options(
        selectinload(DirectDebitCollection.shares), selectinload(DirectDebitCollection.mandate))
        .with_for_update()).all()
    shares = {f"sdd:{c.id}:{share.lease_id}": share for c in collections for share in c.shares if share.amount > 0}
    rows = [dict(household_id=share.collection.household_id, lease_id=share.lease_id, kind=EntryKind.DIRECT_DEBIT,
                 direction=Direction.CREDIT, amount=share.amount, entry_date=share.collection.collection_date,
                 label=f"Prélèvement SEPA {share.collection.period} ({share.collection.mandate.reference})",
                 period=share.collection.period, external_ref=reference, created_at=now)
            for reference, share in shares.items()]
    if rows:
        for entry_id, reference in db.session.execute(
                sa.insert(LedgerEntry).returning(LedgerEntry.id, LedgerEntry.external_ref), rows):
            shares[reference].credit_entry_id = entry_id
    for collection in collections:
        collection.status, collection.settled_on = CollectionStatus.SETTLED, collection.collection_date
        mandate = collection.mandate
        if mandate.last_collection_on is None or mandate.last_collection_on < collection.collection_date:
            mandate.last_collection_on = collection.collection_date
    db.session.commit()
    return len(collections)


def daily(today: date, now: datetime) -> int:
    """The scheduler's direct-debit job: settle what is due, pre-notify what can be, build the files due."""
    return settle(today, now) + prenotify(today, now) + due_files(today, now)


# --- 4. rejects and returns ----------------------------------------------------------------------------------------

def _reject(collection: DirectDebitCollection, reason_code: str, on: date, today: date, now: datetime) -> str:
    """Apply a reject (before the collection date) or a return (after it). Returns what was done, for the staff's
    report; raises SepaError when it cannot apply. The caller commits."""
    code = "".join(c for c in (reason_code or "").upper() if c.isalnum())[:4]
    if not code:
        raise SepaError(_("Indiquez le code motif du rejet (par exemple AM04, MD06)."), "reason")
    if collection.status is CollectionStatus.REJECTED:
        raise SepaError(_("Ce rejet est déjà enregistré."), "reason")
    if collection.status not in (CollectionStatus.SUBMITTED, CollectionStatus.SETTLED):
        raise SepaError(_("Ce prélèvement n'a pas été envoyé à la banque."), "reason")
    if on > today:
        raise SepaError(_("La date du rejet ne peut pas être dans le futur."), "rejected_on")
    if on < collection.batch.created_at.date():
        raise SepaError(_("La date du rejet est antérieure à l'envoi du prélèvement (%(date)s).",
                          date=format_date(collection.batch.created_at.date(), "d MMMM yyyy")), "rejected_on")
    returned = collection.status is CollectionStatus.SETTLED
    if returned:
        for share in collection.shares:
            credit = db.session.get(LedgerEntry, share.credit_entry_id) if share.credit_entry_id else None
            if credit is not None:
                ledger.reverse(credit, EntryKind.REJECT, f"Rejet du prélèvement {collection.period} ({code})",
                               on, now, f"reject:{collection.id}:{share.lease_id}")
        db.session.flush()
        documents.withdraw_unsettled_quittances([share.lease_id for share in collection.shares])
    collection.status, collection.rejected_on, collection.reject_reason = CollectionStatus.REJECTED, on, code
    household = collection.household
    household.payment_incident = True
    account = household.account
    if account is not None and account.user.active:
        queue_mail(account.user.email, "debit_rejected", account.locale, name=account.user.first_name,
                   amount=money(collection.amount), link=external_url("TenantPaymentView.index"))
    return "returned" if returned else "rejected"


# The reason codes of SEPA direct-debit R-transactions (EPC guidance on reason codes, ISO 20022
# ExternalStatusReason1Code / ExternalReturnReason1Code as the SDD rulebook uses them).
SDD_REASON_CODES = frozenset({
    "AC01", "AC04", "AC06", "AC13", "AG01", "AG02", "AM04", "AM05", "BE05", "CNOR", "DNOR", "FF01", "MD01", "MD02",
    "MD06", "MD07", "MS02", "MS03", "RC01", "RR01", "RR02", "RR03", "RR04", "SL01", "CUST", "DUPL", "FRAD", "TECH",
    "AGNT", "CURR",
})


def record_reject(collection: DirectDebitCollection, reason_code: str, on: date, today: date,
                  now: datetime) -> str:
    """A reject typed by staff (from a paper or phone notice of the bank): the code must be one of the rulebook's,
    typed whole (« AM04X » is a typo, not AM04)."""
    code = "".join((reason_code or "").split()).upper()
    if code and code not in SDD_REASON_CODES:
        raise SepaError(_("« %(code)s » n'est pas un code motif de rejet SEPA. Recopiez le code de l'avis de la "
                          "banque, par exemple AM04 (provision insuffisante) ou MD06 (contestation).",
                          code=code[:20]), "reason")
    outcome = _reject(collection, code, on, today, now)
    db.session.commit()
    return outcome


def import_bank_answer(data: bytes, filename: str, today: date, now: datetime,
                       user_id: int | None = None) -> BankFileImport:
    """Apply a pain.002, camt.054 or camt.053 from the bank: rejects and returns matched by message id and
    end-to-end id, the rest listed for review. The same message twice (even at the same time) applies once."""
    config = current_app.config
    try:
        answer = bank_answers.parse(data)
    except bank_answers.BankFileError as error:
        raise SepaError(str(error), "file") from None
    if answer.creditor_ids and config["SEPA_CREDITOR_ID"] not in answer.creditor_ids:
        raise SepaError(_("Ce fichier concerne un autre créancier (ICS %(ics)s) : rien n'a été appliqué.",
                          ics=", ".join(sorted(answer.creditor_ids))), "file")
    if answer.account_iban and answer.account_iban.replace(" ", "") != config["SEPA_CREDITOR_IBAN"]:
        raise SepaError(_("Ce relevé concerne un autre compte que celui du créancier : rien n'a été appliqué."),
                        "file")
    record = BankFileImport(message_type=answer.message_type, message_id=answer.message_id[:35],
                            filename=(filename or "fichier")[:200], sha256=hashlib.sha256(data).hexdigest(),
                            imported_by_id=user_id, created_at=now, report=[])
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise SepaError(_("Ce fichier a déjà été importé : rien n'a été appliqué une seconde fois."), "file") from None
    if answer.message_type == "pain.002" and answer.group_status == "RJCT":
        report = [_reject_file(answer)]
    else:
        report = [_apply_line(answer, line, today, now) for line in answer.lines]
    record.report = report
    record.applied = sum(1 for line in report if line["result"] in ("rejected", "returned"))
    record.to_review = sum(1 for line in report if line["result"] == "review")
    db.session.commit()
    return record


def _reject_file(answer) -> dict:
    """The bank refused a whole file (a format error, say): no tenant's debit was rejected. The debits go back to
    « announced », so staff can build the file again once the cause is fixed."""
    entry = {"end_to_end_id": None, "status": "file_rejected", "reason": answer.group_reason_code, "amount": None,
             "on": answer.created_at.date().isoformat()}
    batch = db.session.scalar(sa.select(DirectDebitBatch).where(
        DirectDebitBatch.message_id == answer.original_message_id, DirectDebitBatch.rejected_reason.is_(None)))
    if batch is None:
        return entry | {"result": "review", "message": _("Fichier de prélèvement inconnu : à vérifier.")}
    batch.rejected_reason = (answer.group_reason_code or "RJCT")[:4]
    for collection in batch.collections:
        if collection.status is CollectionStatus.SUBMITTED:
            collection.status, collection.batch_id = CollectionStatus.NOTIFIED, None
    return entry | {"result": "review", "message": _(
        "La banque a refusé tout le fichier %(id)s (%(code)s) : aucun prélèvement n'est parti. Corrigez la cause, "
        "puis préparez le fichier à nouveau.", id=batch.message_id, code=batch.rejected_reason)}


def _apply_line(answer, line, today: date, now: datetime) -> dict:
    entry = {"end_to_end_id": line.end_to_end_id, "status": line.status, "reason": line.reason_code,
             "amount": str(line.amount) if line.amount is not None else None,
             "on": line.on.isoformat() if line.on else None}
    if line.status not in ("rejected", "returned"):
        return entry | {"result": "info", "message": _("Aucune action : opération acceptée ou sans rejet.")}
    collection = db.session.scalar(sa.select(DirectDebitCollection).where(
        DirectDebitCollection.end_to_end_id == (line.end_to_end_id or "")))
    message_id = line.original_message_id or answer.original_message_id
    if collection is None or collection.batch is None or (
            message_id and answer.message_type == "pain.002" and collection.batch.message_id != message_id):
        return entry | {"result": "review", "message": _("Prélèvement inconnu : à vérifier.")}
    if line.amount is not None and line.amount != collection.amount:
        return entry | {"result": "review", "message": _("Le montant ne correspond pas au prélèvement (%(amount)s).",
                                                         amount=money(collection.amount))}
    try:  # _reject checks everything before it writes anything
        outcome = _reject(collection, line.reason_code or "MS03", line.on or today, today, now)
    except SepaError as error:
        return entry | {"result": "review", "message": error.message, "collection_id": collection.id}
    return entry | {"result": outcome, "collection_id": collection.id,
                    "client_number": collection.household.client_number}
