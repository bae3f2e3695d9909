"""HTTP endpoints of the payment protocol: the bank's notification (IPN) and, in development and tests, the
sandbox that plays the bank's part of the same signed-form protocol."""

from __future__ import annotations

import logging
import urllib.parse
import urllib.request
import uuid
from decimal import Decimal

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request

from app.models import utcnow
from app.payments import systempay
from app.services import payments

log = logging.getLogger(__name__)
ipn_bp = Blueprint("payments", __name__)
sandbox_bp = Blueprint("sandbox", __name__, url_prefix="/sandbox/systempay")

SANDBOX_OUTCOMES = {
    "accepted": ("CAPTURED", "00"),
    "refused": ("REFUSED", "05"),
    "abandoned": ("ABANDONED", "17"),
}


@ipn_bp.post("/payments/systempay/ipn")
def systempay_ipn():
    """Server-to-server notification: no CSRF token (the signature is the proof), no redirect, short text."""
    text, status = payments.handle_notification(request.form.to_dict(), utcnow())
    return Response(text, status=status, mimetype="text/plain")


def _sandbox_key(fields) -> str | None:
    return current_app.config.get("SYSTEMPAY_KEY_TEST") if fields.get("vads_ctx_mode") == "TEST" else None


@sandbox_bp.post("/vads-payment/")
def payment_page():
    """The bank's payment page, played offline: checks the form's signature, then offers test cards."""
    fields = request.form.to_dict()
    if not systempay.signature_is_valid(fields, _sandbox_key(fields)):
        return render_template("sandbox/error.html", appbuilder=current_app.appbuilder,
                               base_template=current_app.appbuilder.base_template), 400
    return render_template("sandbox/payment.html", fields=fields, amount=Decimal(fields["vads_amount"]) / 100,
                           appbuilder=current_app.appbuilder, base_template=current_app.appbuilder.base_template)


@sandbox_bp.post("/vads-payment/decision")
def decision():
    """Pay, refuse or abandon: notify the shop server to server (signed), then send the browser back.

    The way back carries no parameter, whatever `vads_return_mode` says: the portal asks for NONE, and its return
    page reads the database, so nothing (the tenant's e-mail least of all) ends up in a URL or an access log."""
    fields = {k: v for k, v in request.form.items() if k.startswith("vads_") or k == "signature"}
    choice = request.form.get("outcome")
    if choice not in SANDBOX_OUTCOMES or not systempay.signature_is_valid(fields, _sandbox_key(fields)):
        abort(400)
    status, result = SANDBOX_OUTCOMES[choice]
    notification = {k: v for k, v in fields.items() if k.startswith("vads_")}
    notification.update(vads_trans_uuid=uuid.uuid4().hex, vads_trans_status=status, vads_result=result,
                        vads_url_check_src="PAY", vads_hash=uuid.uuid4().hex,
                        # like the bank: no operation type in the notification of an abandoned payment
                        vads_operation_type="" if choice == "abandoned" else systempay.DEBIT)
    signed = systempay.signed(notification, _sandbox_key(fields))
    _notify(fields.get("vads_url_check"), signed)
    return redirect(fields["vads_url_return"])


def _notify(url: str | None, fields: dict[str, str]) -> None:
    if not url:
        return
    data = urllib.parse.urlencode(fields).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=35) as answer:
            log.info("sandbox notification answered %s", answer.status)
    except OSError as exc:  # like the bank: the shop's answer does not change the payment
        log.warning("sandbox notification to %s failed: %s", url, exc)
