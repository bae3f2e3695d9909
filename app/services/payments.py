"""Card payment through the bank's hosted page: starting a payment and applying the bank's signed notification.

The notification is the only proof of payment: the browser's return only displays what the database says. A
payment is credited exactly once (the transaction row is locked, and each credit's `external_ref` is unique), and a
notification that does not match what we created is kept for staff review, never credited. Only a `DEBIT` operation
credits money. A signed notification that undoes a credited payment (cancelled or failed capture after payment, or a
refund, `vads_operation_type=CREDIT`) reverses its credits in the same transaction and puts it on the staff review
list. Receipts and mail are left to jobs (the mail queue, `render_card_receipts`), so the notification answers fast.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from app import filestore
from app.extensions import db
from app.formatting import money
from app.mail import external_url, queue_mail
from app.money import MoneyError, parse_money
from app.models import (
    ZERO, Direction, EntryKind, Household, Lease, LedgerEntry, PaymentStatus, PaymentTransaction, TenantAccount,
    utcnow,
)
from app.payments import systempay
from app.security import get_for_household
from app.services import documents, ledger

log = logging.getLogger(__name__)
REVERSAL_PREFIX = "systempay-reversal:"  # + the bank's uuid of the operation that undid the payment + ":<credit id>"


class PaymentError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def config_amount(name: str) -> Decimal:
    return Decimal(current_app.config[name])


def amount_due(household: Household, lease: Lease | None) -> Decimal:
    balance = ledger.lease_balance(lease.id) if lease else ledger.household_balance(household.id)
    return max(balance, ZERO)


def pay_limits(household: Household, lease: Lease | None, today: date) -> tuple[Decimal, Decimal]:
    """(proposed, maximum) amounts for paying `lease`, or every lease of the household when None.

    Proposed: what the scope owes. Maximum: what it owes plus one month of the net rent (rent + charges - housing
    benefit) of its current leases, so a tenant may clear arrears and pay one month ahead, no more; never above
    PAYMENT_MAX_AMOUNT.
    """
    leases = [lease] if lease else household.leases
    month = sum((max(item.rent + item.charges - item.housing_benefit, ZERO) for item in leases
                 if item.end_date is None or item.end_date >= today), ZERO)
    owed = amount_due(household, lease)
    maximum = min(owed + month, config_amount("PAYMENT_MAX_AMOUNT"))
    return min(owed, maximum), maximum


def parse_amount(text: str | None, maximum: Decimal | None = None) -> Decimal:
    """The amount typed by the tenant, checked against the minimum, PAYMENT_MAX_AMOUNT and `maximum` (the scope's)."""
    try:  # digits and one decimal separator only: Decimal() alone takes Infinity, 1E308, 1e1 and 1_0
        amount = parse_money(text)
    except MoneyError as error:
        raise PaymentError(error.message, "amount") from None
    minimum, ceiling = config_amount("PAYMENT_MIN_AMOUNT"), config_amount("PAYMENT_MAX_AMOUNT")
    if amount < minimum:
        raise PaymentError(_("Le montant minimum est de %(amount)s.", amount=money(minimum)), "amount")
    if amount > ceiling:
        raise PaymentError(_("Le montant maximum d'un paiement en ligne est de %(amount)s.",
                             amount=money(ceiling)), "amount")
    if maximum is not None and amount > maximum:
        raise PaymentError(_("Vous pouvez payer au plus %(amount)s pour ce choix : ce que vous devez et un mois de "
                             "loyer d'avance.", amount=money(maximum)), "amount")
    return amount


def _new_trans_id(day) -> str:
    """Six digits, unique per shop and UTC day; 900000-999999 are reserved by the bank."""
    while True:
        trans_id = f"{secrets.randbelow(900_000):06d}"
        taken = db.session.scalar(sa.select(PaymentTransaction.id).where(
            PaymentTransaction.trans_day == day, PaymentTransaction.trans_id == trans_id))
        if taken is None:
            return trans_id


def start_payment(household: Household, lease_id: int | None, amount_text: str, now: datetime) -> PaymentTransaction:
    """Create the transaction the bank will be asked to pay; the amount is checked here, on the server."""
    lease = get_for_household(Lease, lease_id, household) if lease_id else None
    amount = parse_amount(amount_text, pay_limits(household, lease, now.date())[1])
    day = now.date()
    trans_id = _new_trans_id(day)
    transaction = PaymentTransaction(
        household_id=household.id, lease_id=lease.id if lease else None,
        order_id=f"EL-{now:%Y%m%d}-{trans_id}",  # letters first: can never look like a card number
        trans_id=trans_id, trans_day=day, amount=amount, currency=systempay.EURO,
        ctx_mode=current_app.config["SYSTEMPAY_CTX_MODE"], status=PaymentStatus.CREATED, created_at=now)
    db.session.add(transaction)
    db.session.commit()
    return transaction


def _key(mode: str | None) -> str | None:
    config = current_app.config
    if mode == "PRODUCTION":
        return config.get("SYSTEMPAY_KEY_PRODUCTION")
    if mode == "TEST" and config["SYSTEMPAY_CTX_MODE"] == "TEST":
        return config.get("SYSTEMPAY_KEY_TEST")
    return None  # the TEST key is refused when the portal runs in PRODUCTION


def payment_url() -> str:
    return current_app.config.get("SYSTEMPAY_PAYMENT_URL") or external_url("sandbox.payment_page")


def payment_form(transaction: PaymentTransaction) -> dict[str, str]:
    """The signed fields of the bank's form for `transaction`."""
    household = transaction.household
    fields = {
        "vads_action_mode": "INTERACTIVE",
        "vads_amount": systempay.cents(transaction.amount),
        "vads_capture_delay": "0",
        "vads_ctx_mode": transaction.ctx_mode,
        "vads_currency": transaction.currency,
        "vads_cust_email": household.account.user.email if household.account else household.email,
        "vads_cust_id": household.client_number,
        "vads_order_id": transaction.order_id,
        "vads_page_action": "PAYMENT",
        "vads_payment_config": "SINGLE",
        "vads_return_mode": systempay.RETURN_MODE,
        "vads_site_id": current_app.config["SYSTEMPAY_SITE_ID"],
        "vads_trans_date": systempay.trans_date(transaction.created_at),
        "vads_trans_id": transaction.trans_id,
        "vads_url_check": external_url("payments.systempay_ipn"),
        "vads_url_return": external_url("TenantPaymentView.returned", order_id=transaction.order_id),
        "vads_validation_mode": "0",
        "vads_version": "V2",
    }
    return systempay.signed(fields, _key(transaction.ctx_mode))


def _review(transaction: PaymentTransaction, reason: str, now: datetime) -> tuple[str, int]:
    transaction.status, transaction.review_reason, transaction.notified_at = PaymentStatus.REVIEW, reason, now
    db.session.commit()
    log.warning("payment %s kept for review: %s", transaction.order_id, reason)
    return "KO: kept for review", 200


def _already_processed() -> tuple[str, int]:
    db.session.rollback()
    return "OK: already processed", 200


def handle_notification(fields: dict[str, str], now: datetime) -> tuple[str, int]:
    """Apply the bank's notification. Returns the short text to answer and the HTTP status."""
    mode = fields.get("vads_ctx_mode")
    if not systempay.signature_is_valid(fields, _key(mode)):
        log.warning("payment notification refused: bad or missing signature (order %s, mode %s)",
                    fields.get("vads_order_id"), mode)
        return "KO: bad signature", 400
    operation = fields.get("vads_operation_type") or ""
    query = sa.select(PaymentTransaction).where(PaymentTransaction.order_id == fields.get("vads_order_id", ""))
    if operation != systempay.REFUND:  # a refund is a transaction of its own at the bank, for the same order
        query = query.where(PaymentTransaction.trans_id == fields.get("vads_trans_id", ""))
    transaction = db.session.scalar(query.with_for_update())
    if transaction is None:
        log.warning("payment notification for an unknown order %s", fields.get("vads_order_id"))
        return "KO: unknown order", 404
    # The bank leaves vads_operation_type out when a payment is cancelled: keep the one we were told before.
    transaction.operation_type = operation[:10] or transaction.operation_type
    transaction.check_src = (fields.get("vads_url_check_src") or "")[:20] or transaction.check_src
    mismatches = _mismatches(transaction, fields, operation)
    if mismatches:
        return _review(transaction, _("la notification ne correspond pas au paiement : %(fields)s",
                                      fields=", ".join(mismatches)), now)
    if operation == systempay.REFUND:
        return _apply_refund(transaction, fields, now)
    if transaction.status is PaymentStatus.PAID or _credited(transaction):
        return _after_credit(transaction, fields, now)
    return _apply_payment(transaction, fields, now)


def _mismatches(transaction: PaymentTransaction, fields: dict[str, str], operation: str) -> list[str]:
    """The fields that do not match the payment we created; a refund may be for part of the amount."""
    amount, paid = fields.get("vads_amount") or "", systempay.cents(transaction.amount)
    checks = {
        "vads_site_id": fields.get("vads_site_id") == current_app.config["SYSTEMPAY_SITE_ID"],
        "vads_ctx_mode": fields.get("vads_ctx_mode") == transaction.ctx_mode,
        "vads_amount": (amount.isdigit() and 0 < int(amount) <= int(paid)) if operation == systempay.REFUND
        else amount == paid,
        "vads_currency": fields.get("vads_currency") == transaction.currency,
        "vads_trans_uuid": bool(fields.get("vads_trans_uuid")),  # the key of idempotence: every notification has one
    }
    return [name for name, ok in checks.items() if not ok]


def _record(transaction: PaymentTransaction, fields: dict[str, str], now: datetime) -> None:
    transaction.bank_status = (fields.get("vads_trans_status") or "")[:40]
    transaction.bank_result = (fields.get("vads_result") or "")[:4]
    transaction.notified_at = now


def _apply_payment(transaction: PaymentTransaction, fields: dict[str, str], now: datetime) -> tuple[str, int]:
    """A notification for a payment not credited yet: credit it (a DEBIT only), or record where it stands."""
    uuid, operation = fields.get("vads_trans_uuid", ""), transaction.operation_type
    outcome = systempay.outcome(fields.get("vads_trans_status"))
    _record(transaction, fields, now)
    transaction.trans_uuid = uuid[:32] or None
    if outcome == "paid" and operation != systempay.DEBIT:
        return _review(transaction, _("type d'opération inconnu (%(operation)s) : le paiement n'est pas crédité",
                                      operation=operation or "-"), now)
    try:
        if outcome == "paid":
            transaction.status = PaymentStatus.PAID
            _credit(transaction, transaction.trans_uuid, now)
            db.session.flush()  # a concurrent delivery that credited first makes the unique external_ref refuse this
            _confirm_by_mail(transaction)
        else:
            transaction.status = PaymentStatus.PENDING if outcome == "pending" else PaymentStatus.FAILED
        db.session.commit()
    except IntegrityError:
        return _already_processed()
    return "OK", 200


def _after_credit(transaction: PaymentTransaction, fields: dict[str, str], now: datetime) -> tuple[str, int]:
    """A notification for a payment already credited: a repeat, another attempt, or the bank undoing it."""
    uuid, status = fields.get("vads_trans_uuid", ""), fields.get("vads_trans_status") or ""
    if uuid[:32] != transaction.trans_uuid:  # another attempt must not undo (or pay twice) the credited one
        return _review(transaction, _("deuxième notification %(uuid)s avec l'état %(status)s",
                                      uuid=uuid, status=status), now)
    if status not in systempay.UNDONE:
        return _already_processed()
    if transaction.reversed_at is not None and not _standing_credits(transaction):
        return _already_processed()  # the same cancellation again: reversed already
    return _reverse(transaction, fields, None, uuid, now,
                    _("annulé par la banque (%(status)s) après encaissement", status=status))


def _apply_refund(transaction: PaymentTransaction, fields: dict[str, str], now: datetime) -> tuple[str, int]:
    """A refund (`vads_operation_type=CREDIT`) of all or part of the payment: reverse that much, once."""
    uuid, status = fields["vads_trans_uuid"], fields.get("vads_trans_status")
    if systempay.outcome(status) != "paid":  # a refund asked for, or refused, moves no money yet
        log.info("refund %s of payment %s not done: %s", uuid, transaction.order_id, status)
        db.session.rollback()
        return "OK", 200
    done = db.session.scalar(sa.select(LedgerEntry.id).where(
        LedgerEntry.external_ref.startswith(f"{REVERSAL_PREFIX}{uuid}:", autoescape=True)).limit(1))
    if done is not None:
        return _already_processed()
    amount = (Decimal(fields["vads_amount"]) / 100).quantize(Decimal("0.01"))
    return _reverse(transaction, fields, amount, uuid, now,
                    _("remboursé par la banque : %(amount)s sur %(total)s (opération %(uuid)s)",
                      amount=money(amount), total=money(transaction.amount), uuid=uuid))


def _credit_refs(transaction: PaymentTransaction):
    """The payment's credits: `systempay:<uuid>`, `systempay:<uuid>:<lease>` or, after a partial refund,
    `systempay:<uuid>:k<reversed credit>` (the part kept)."""
    prefix = f"systempay:{transaction.trans_uuid}"
    return sa.and_(LedgerEntry.kind == EntryKind.CARD_PAYMENT, LedgerEntry.direction == Direction.CREDIT,
                   sa.or_(LedgerEntry.external_ref == prefix,
                          LedgerEntry.external_ref.startswith(f"{prefix}:", autoescape=True)))


def _credited(transaction: PaymentTransaction) -> bool:
    if not transaction.trans_uuid:
        return False
    return db.session.scalar(sa.select(LedgerEntry.id).where(_credit_refs(transaction)).limit(1)) is not None


def _standing_credits(transaction: PaymentTransaction) -> list[LedgerEntry]:
    """The payment's credits that no reversal cancels yet, oldest first."""
    if not transaction.trans_uuid:
        return []
    reversal = aliased(LedgerEntry)
    return list(db.session.scalars(
        sa.select(LedgerEntry).where(_credit_refs(transaction),
                                     ~sa.exists().where(reversal.reverses_id == LedgerEntry.id))
        .order_by(LedgerEntry.id)))


def _reverse(transaction: PaymentTransaction, fields: dict[str, str], amount: Decimal | None, reference: str,
             now: datetime, reason: str) -> tuple[str, int]:
    """Take back `amount` (None: all) of the payment's standing credits, oldest first, withdraw the quittances and the
    receipt that no longer hold, put the payment on the review list and tell the tenant: one database transaction."""
    credits = _standing_credits(transaction)
    standing = sum((credit.amount for credit in credits), ZERO)
    if not credits or (amount is not None and amount > standing):
        return _review(transaction, _(
            "%(reason)s ; rien n'a été annulé : il ne reste que %(credited)s crédités pour ce paiement",
            reason=reason, credited=money(standing)), now)
    amount = standing if amount is None else amount
    try:
        leases = _take_back(transaction, credits, amount, reference, now)
        db.session.flush()  # a concurrent delivery that reversed first makes the unique reverses_id refuse this
        documents.withdraw_unsettled_quittances(sorted(leases))
        _withdraw_receipt(transaction)
        _record(transaction, fields, now)
        transaction.reversed_at, transaction.status, transaction.review_reason = now, PaymentStatus.REVIEW, reason
        _tell_reversal(transaction, amount, refund=transaction.operation_type == systempay.REFUND)
        db.session.commit()
    except IntegrityError:
        return _already_processed()
    log.warning("payment %s reversed (%s): %s", transaction.order_id, reference, reason)
    return "OK", 200


def _take_back(transaction: PaymentTransaction, credits: list[LedgerEntry], amount: Decimal, reference: str,
               now: datetime) -> set[int]:
    """Reverse credits until `amount` is taken back. A reversal cancels a whole credit, so a credit refunded in part
    is reversed whole and the part kept is credited again. Returns the leases touched."""
    label = _("Annulation du paiement par carte %(order)s", order=transaction.order_id)
    leases, left = set(), amount
    for credit in credits:
        if left <= ZERO:
            break
        ledger.reverse(credit, EntryKind.CARD_REVERSAL, label, now.date(), now,
                       f"{REVERSAL_PREFIX}{reference}:{credit.id}")
        taken = min(credit.amount, left)
        kept, left = credit.amount - taken, left - taken
        if kept:
            db.session.add(LedgerEntry(
                household_id=credit.household_id, lease_id=credit.lease_id, kind=EntryKind.CARD_PAYMENT,
                direction=Direction.CREDIT, amount=kept, entry_date=now.date(), created_at=now,
                label=_("Paiement par carte %(order)s, part non remboursée", order=transaction.order_id)[:200],
                external_ref=f"systempay:{transaction.trans_uuid}:k{credit.id}"[:80]))
        leases.add(credit.lease_id)
    return leases


def _withdraw_receipt(transaction: PaymentTransaction) -> None:
    """A reversed payment's receipt is no proof of payment any more: remove the stored file."""
    key = receipt_key(transaction)
    if key is not None:
        filestore.delete(key)
    transaction.receipt_stored_name = None


def _tenant_account(transaction: PaymentTransaction) -> TenantAccount | None:
    return db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == transaction.household_id))


def _confirm_by_mail(transaction: PaymentTransaction) -> None:
    account = _tenant_account(transaction)
    if account is not None:
        queue_mail(account.user.email, "payment_confirmed", account.locale, name=account.user.first_name,
                   amount=money(transaction.amount), order=transaction.order_id,
                   link=external_url("TenantPaymentView.index"))


def _tell_reversal(transaction: PaymentTransaction, amount: Decimal, refund: bool) -> None:
    account = _tenant_account(transaction)
    if account is not None:
        queue_mail(account.user.email, "payment_reversed", account.locale, name=account.user.first_name,
                   amount=money(amount), total=money(transaction.amount), order=transaction.order_id,
                   refund=refund, link=external_url("TenantPaymentView.index"))


def _credit(transaction: PaymentTransaction, uuid: str, now: datetime) -> None:
    """Post the payment on the ledger: on its lease, or spread over the household's leases that owe money."""
    if transaction.lease_id:
        shares = {transaction.lease_id: transaction.amount}
    else:
        shares, left = {}, transaction.amount
        leases = db.session.scalars(sa.select(Lease).where(Lease.household_id == transaction.household_id)
                                    .order_by(Lease.start_date, Lease.id)).all()
        for lease in leases:
            part = min(max(ledger.lease_balance(lease.id), ZERO), left)
            if part:
                shares[lease.id], left = part, left - part
        if left:  # paid more than owed: the rest stays as a credit on the first lease
            shares[leases[0].id] = shares.get(leases[0].id, ZERO) + left
    for lease_id, amount in shares.items():
        reference = f"systempay:{uuid}" if len(shares) == 1 else f"systempay:{uuid}:{lease_id}"
        db.session.add(LedgerEntry(
            household_id=transaction.household_id, lease_id=lease_id, kind=EntryKind.CARD_PAYMENT,
            direction=Direction.CREDIT, amount=amount, label=_("Paiement par carte %(order)s",
                                                               order=transaction.order_id),
            entry_date=now.date(), external_ref=reference[:80], created_at=now))


# --- receipts (job) ------------------------------------------------------------------------------------------------

RECEIPTS_FOLDER = "payments"  # the key prefix of card receipts in the file store (their folder under FILES_DIR)


def receipt_key(transaction: PaymentTransaction) -> str | None:
    """The key of the payment receipt's file in the file store, None if none was rendered."""
    name = transaction.receipt_stored_name
    return f"{RECEIPTS_FOLDER}/{name}" if name else None


def ensure_receipt(transaction: PaymentTransaction) -> str | None:
    """The key of the payment receipt's file, rendered if the store does not have it yet; None unless the payment
    stands as paid (one that is under review, cancelled or refunded is no proof of payment)."""
    from app.pdf import render_pdf

    if transaction.status is not PaymentStatus.PAID or transaction.reversed_at is not None:
        return None
    key = receipt_key(transaction)
    if key is not None and filestore.exists(key):
        return key
    pdf = render_pdf("pdf/card_receipt.html", transaction=transaction, household=transaction.household)
    transaction.receipt_stored_name = f"{hashlib.sha256(secrets.token_bytes(16)).hexdigest()[:32]}.pdf"
    key = receipt_key(transaction)
    filestore.save(key, pdf)
    db.session.commit()
    return key


RECEIPT_AHEAD = timedelta(days=3)


def render_card_receipts(now: datetime | None = None, limit: int = 200) -> int:
    """The job: render ahead the receipts of card payments paid in the last few days (the ones tenants come for).
    An older payment's receipt is rendered the first time it is asked for (`ensure_receipt`): a history imported
    or seeded at once (the demo's 1,400 payments) costs nothing until someone wants one."""
    since = (now or utcnow()) - RECEIPT_AHEAD
    pending = db.session.scalars(sa.select(PaymentTransaction).where(
        PaymentTransaction.status == PaymentStatus.PAID, PaymentTransaction.reversed_at.is_(None),
        PaymentTransaction.receipt_stored_name.is_(None), PaymentTransaction.notified_at >= since)
        .order_by(PaymentTransaction.id).limit(limit)).all()
    for transaction in pending:
        ensure_receipt(transaction)
    return len(pending)


# --- staff ---------------------------------------------------------------------------------------------------------

@dataclass
class PaymentDay:
    day: date
    count: int
    total: Decimal


def payment_days(first_day: date) -> list[PaymentDay]:
    """Paid card payments per UTC day of the month starting `first_day` (one grouped query)."""
    last = date(first_day.year + (first_day.month == 12), first_day.month % 12 + 1, 1)
    rows = db.session.execute(
        sa.select(PaymentTransaction.trans_day, sa.func.count(PaymentTransaction.id),
                  sa.func.sum(PaymentTransaction.amount))
        .where(PaymentTransaction.status == PaymentStatus.PAID, PaymentTransaction.trans_day >= first_day,
               PaymentTransaction.trans_day < last)
        .group_by(PaymentTransaction.trans_day).order_by(PaymentTransaction.trans_day)).all()
    return [PaymentDay(day, count, ledger.cents(total)) for day, count, total in rows]
