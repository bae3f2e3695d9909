"""The bank's hosted payment page protocol (Systempay, Lyra platform): building the signed form and checking the
signed notification. Facts: shared/REFERENCE.md section 1.

Signature: every field whose name starts with `vads_`, sorted by name, values joined with `+`, then `+` and the key
of the mode in `vads_ctx_mode`; base64 of HMAC-SHA-256 with that key. Empty fields are not sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from decimal import Decimal

PAID = {"AUTHORISED", "CAPTURED"}
PENDING = {"INITIAL", "WAITING_AUTHORISATION", "WAITING_AUTHORISATION_TO_VALIDATE", "AUTHORISED_TO_VALIDATE",
           "UNDER_VERIFICATION", "SUSPENDED"}
FAILED = {"REFUSED", "ABANDONED", "NOT_CREATED", "CANCELLED", "EXPIRED", "CAPTURE_FAILED"}
# Statuses that, for a transaction already paid (same vads_trans_uuid), say the money will not arrive after all.
UNDONE = {"CAPTURE_FAILED", "CANCELLED", "REFUSED", "EXPIRED"}
EURO = "978"
# vads_operation_type: only a DEBIT brings money; a CREDIT is a refund of (part of) an earlier debit. The bank leaves
# the field out of the notification of a cancelled or abandoned payment.
DEBIT, REFUND = "DEBIT", "CREDIT"
# vads_return_mode: NONE sends the browser back with no parameter at all (GET would put every vads_* field, the
# tenant's e-mail included, in the return URL and so in access logs and browser history).
RETURN_MODE = "NONE"


def signature(fields: dict[str, str], key: str) -> str:
    message = "+".join(str(fields[name]) for name in sorted(fields) if name.startswith("vads_")) + "+" + key
    digest = hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed(fields: dict[str, str], key: str) -> dict[str, str]:
    """The fields without empty values, plus their signature."""
    present = {name: str(value) for name, value in fields.items() if value not in (None, "")}
    return {**present, "signature": signature(present, key)}


def signature_is_valid(fields: dict[str, str], key: str | None) -> bool:
    if not key or not fields.get("signature"):
        return False
    expected = signature({k: v for k, v in fields.items() if k.startswith("vads_")}, key)
    return hmac.compare_digest(expected, fields["signature"])


def cents(amount: Decimal) -> str:
    return str(int((amount * 100).quantize(Decimal("1"))))


def trans_date(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def outcome(status: str | None) -> str:
    """'paid', 'pending' or 'failed' for a `vads_trans_status`; a card check (ACCEPTED) is never a payment."""
    if status in PAID:
        return "paid"
    if status in PENDING:
        return "pending"
    return "failed"
