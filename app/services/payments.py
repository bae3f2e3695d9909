"""Card payment through the bank's hosted page: starting a payment and applying the bank's signed notification.

The notification is the only proof of payment: the browser's return only displays what the database says. A
payment is credited exactly once (the transaction row is locked, and each credit's `external_ref` is unique), and a
notification that does not match what we created is kept for staff review, never credited. Receipts and mail are
left to jobs (the mail queue, `render_card_receipts`), so the notification answers fast.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.formatting import money
from app.mail import external_url, queue_mail
from app.models import (
    ZERO, Direction, EntryKind, Household, Lease, LedgerEntry, PaymentStatus, PaymentTransaction, TenantAccount,
)
from app.payments import systempay
from app.security import get_for_household
from app.services import ledger

log = logging.getLogger(__name__)


class PaymentError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def config_amount(name: str) -> Decimal:
    return Decimal(current_app.config[name])


def amount_due(household: Household, lease: Lease | None) -> Decimal:
    balance = ledger.lease_balance(lease.id) if lease else ledger.household_balance(household.id)
    return max(balance, ZERO)


def parse_amount(text: str | None) -> Decimal:
    cleaned = (text or "").replace("\u202f", "").replace("\u00a0", "").replace(" ", "").replace("€", "")
    cleaned = cleaned.replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise PaymentError(_("Saisissez un montant en euros, par exemple 125,50."), "amount") from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise PaymentError(_("Saisissez un montant en euros avec au plus deux chiffres après la virgule."), "amount")
    minimum, maximum = config_amount("PAYMENT_MIN_AMOUNT"), config_amount("PAYMENT_MAX_AMOUNT")
    if amount < minimum:
        raise PaymentError(_("Le montant minimum est de %(amount)s.", amount=money(minimum)), "amount")
    if amount > maximum:
        raise PaymentError(_("Le montant maximum d'un paiement en ligne est de %(amount)s.",
                             amount=money(maximum)), "amount")
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
    amount = parse_amount(amount_text)
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
        "vads_return_mode": "GET",
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


def handle_notification(fields: dict[str, str], now: datetime) -> tuple[str, int]:
    """Apply the bank's notification. Returns the short text to answer and the HTTP status."""
    mode = fields.get("vads_ctx_mode")
    if not systempay.signature_is_valid(fields, _key(mode)):
        log.warning("payment notification refused: bad or missing signature (order %s, mode %s)",
                    fields.get("vads_order_id"), mode)
        return "KO: bad signature", 400
    transaction = db.session.scalar(sa.select(PaymentTransaction).where(
        PaymentTransaction.order_id == fields.get("vads_order_id", ""),
        PaymentTransaction.trans_id == fields.get("vads_trans_id", "")).with_for_update())
    if transaction is None:
        log.warning("payment notification for an unknown order %s", fields.get("vads_order_id"))
        return "KO: unknown order", 404
    uuid = fields.get("vads_trans_uuid", "")
    if transaction.status is PaymentStatus.PAID and transaction.trans_uuid == uuid:
        db.session.rollback()
        return "OK: already processed", 200
    expected = {"vads_site_id": current_app.config["SYSTEMPAY_SITE_ID"], "vads_ctx_mode": transaction.ctx_mode,
                "vads_amount": systempay.cents(transaction.amount), "vads_currency": transaction.currency}
    mismatches = [name for name, value in expected.items() if fields.get(name) != value]
    if mismatches:
        return _review(transaction, f"notification does not match the payment: {', '.join(mismatches)}", now)
    outcome = systempay.outcome(fields.get("vads_trans_status"))
    if transaction.status is PaymentStatus.PAID:  # paid by another notification: a later one must not undo it
        return _review(transaction, f"second notification {uuid} with status {fields.get('vads_trans_status')}", now)
    transaction.bank_status = (fields.get("vads_trans_status") or "")[:40]
    transaction.bank_result = (fields.get("vads_result") or "")[:4]
    transaction.trans_uuid = uuid[:32] or None
    transaction.notified_at = now
    try:
        if outcome == "paid":
            transaction.status = PaymentStatus.PAID
            _credit(transaction, uuid, now)
            db.session.flush()  # a concurrent delivery that credited first makes the unique external_ref refuse this
            _confirm_by_mail(transaction)
        else:
            transaction.status = PaymentStatus.PENDING if outcome == "pending" else PaymentStatus.FAILED
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return "OK: already processed", 200
    return "OK", 200


def _confirm_by_mail(transaction: PaymentTransaction) -> None:
    account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == transaction.household_id))
    if account is not None:
        queue_mail(account.user.email, "payment_confirmed", account.locale, name=account.user.first_name,
                   amount=money(transaction.amount), order=transaction.order_id,
                   link=external_url("TenantPaymentView.index"))


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

def receipt_path(transaction: PaymentTransaction):
    from pathlib import Path

    folder = Path(current_app.config["FILES_DIR"]) / "payments"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / transaction.receipt_stored_name if transaction.receipt_stored_name else None


def ensure_receipt(transaction: PaymentTransaction):
    """The payment receipt's file, rendered if it is not on disk yet."""
    from app.pdf import render_pdf

    path = receipt_path(transaction)
    if path is not None and path.is_file():
        return path
    if transaction.status is not PaymentStatus.PAID:
        return None
    pdf = render_pdf("pdf/card_receipt.html", transaction=transaction, household=transaction.household)
    transaction.receipt_stored_name = f"{hashlib.sha256(secrets.token_bytes(16)).hexdigest()[:32]}.pdf"
    path = receipt_path(transaction)
    path.write_bytes(pdf)
    db.session.commit()
    return path


def render_card_receipts(limit: int = 200) -> int:
    """The job: render the receipts of paid card payments that have none yet."""
    pending = db.session.scalars(sa.select(PaymentTransaction).where(
        PaymentTransaction.status == PaymentStatus.PAID, PaymentTransaction.receipt_stored_name.is_(None))
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
