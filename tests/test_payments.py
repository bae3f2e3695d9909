"""Card payment through the bank's hosted page (Systempay protocol), the notification as the only proof of payment,
and the monthly rent call. The bank is the only stand-in, and it is played here by signing with the real rules."""

from __future__ import annotations

import html
import re
import threading
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import (
    Direction, Document, DocumentKind, EntryKind, Household, Lease, LedgerEntry, OutgoingMail, PaymentStatus,
    PaymentTransaction, utcnow,
)
from app.payments import systempay
from app.services import ledger, payments, rent_calls
from tests.conftest import csrf_token

TEST_KEY = "1122334455667788"


def text(response) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def test_published_signature_vector():
    fields = {"vads_action_mode": "INTERACTIVE", "vads_amount": "5124", "vads_ctx_mode": "TEST",
              "vads_currency": "978", "vads_page_action": "PAYMENT", "vads_payment_config": "SINGLE",
              "vads_site_id": "12345678", "vads_trans_date": "20170129130025", "vads_trans_id": "123456",
              "vads_version": "V2"}
    assert systempay.signature(fields, TEST_KEY) == "ycA5Do5tNvsnKdc/eP1bj2xa19z9q3iWPy9/rpesfS0="
    assert systempay.signature_is_valid(systempay.signed(fields, TEST_KEY), TEST_KEY)
    assert not systempay.signature_is_valid(systempay.signed(fields, TEST_KEY), "another-key")


@pytest.mark.parametrize("status, outcome", [("AUTHORISED", "paid"), ("CAPTURED", "paid"), ("ACCEPTED", "failed"),
                                             ("WAITING_AUTHORISATION", "pending"), ("REFUSED", "failed"),
                                             ("ABANDONED", "failed"), (None, "failed")])
def test_status_mapping(status, outcome):
    assert systempay.outcome(status) == outcome


# --- starting a payment ---------------------------------------------------------------------------------------------

def pay(client, amount, lease=""):
    return client.post("/paiement/payer", data={"csrf_token": csrf_token(client, "/paiement/"), "amount": amount,
                                                "lease": lease})


def transactions(app):
    with app.app_context():
        return db.session.scalars(sa.select(PaymentTransaction).where(
            PaymentTransaction.status == PaymentStatus.CREATED)).all()


@pytest.mark.parametrize("amount, message", [
    ("0", "Le montant minimum est de 1,00 €."),
    ("-5", "Le montant minimum est de 1,00 €."),
    ("3000,01", "Le montant maximum d'un paiement en ligne est de 3 000,00 €."),
    ("abc", "Saisissez un montant en euros"),
    ("12,345", "au plus deux chiffres après la virgule"),
    ("", "Ce champ est obligatoire."),
])
def test_pay_form_refuses_bad_amounts_next_to_the_field(client_for, app, amount, message):
    response = pay(client_for("retard@example.org"), amount)
    assert response.status_code == 400
    page = text(response)
    assert re.search(r'id="amount-error">[^<]*' + re.escape(message), page), page[-2000:]
    assert transactions(app) == []


def test_pay_form_refuses_a_lease_of_another_household(client_for, app, demo):
    response = pay(client_for("retard@example.org"), "50", lease=str(demo["locataire_lease"]))
    assert response.status_code in (400, 404)
    assert transactions(app) == []


def test_starting_a_payment_renders_the_signed_bank_form(client_for, app, demo):
    response = pay(client_for("retard@example.org"), "125,50")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    assert 'action="http://127.0.0.1:8080/sandbox/systempay/vads-payment/"' in page
    assert systempay.signature_is_valid({k: html.unescape(v) for k, v in fields.items()}, TEST_KEY)
    assert fields["vads_amount"] == "12550" and fields["vads_currency"] == "978"
    assert re.fullmatch(r"[0-8]\d{5}", fields["vads_trans_id"])
    assert not re.fullmatch(r"[345]\d{12,15}", fields["vads_order_id"])
    assert fields["vads_url_check"].endswith("/payments/systempay/ipn")
    [transaction] = transactions(app)
    assert transaction.amount == Decimal("125.50") and transaction.household_id == demo["retard"]


def test_default_amount_is_what_is_owed(client_for, app, demo):
    with app.app_context():
        balance = ledger.household_balance(demo["retard"])
    page = client_for("retard@example.org").get("/paiement/").get_data(as_text=True)
    assert f'value="{str(balance).replace(".", ",")}"' in page


# --- the notification ----------------------------------------------------------------------------------------------

@pytest.fixture
def created(app, client_for, demo):
    """A payment of 200,00 € started by retard@example.org."""
    pay(client_for("retard@example.org"), "200")
    [transaction] = transactions(app)
    return transaction


def notification(transaction, status="CAPTURED", key=TEST_KEY, **overrides) -> dict[str, str]:
    fields = {"vads_action_mode": "INTERACTIVE", "vads_amount": systempay.cents(transaction.amount),
              "vads_ctx_mode": transaction.ctx_mode, "vads_currency": "978", "vads_order_id": transaction.order_id,
              "vads_page_action": "PAYMENT", "vads_payment_config": "SINGLE", "vads_site_id": "12345678",
              "vads_trans_date": systempay.trans_date(transaction.created_at), "vads_trans_id": transaction.trans_id,
              "vads_version": "V2", "vads_trans_uuid": uuid.uuid4().hex, "vads_trans_status": status,
              "vads_result": "00" if status == "CAPTURED" else "05", "vads_url_check_src": "PAY",
              "vads_hash": uuid.uuid4().hex}
    fields.update(overrides)
    return systempay.signed(fields, key)


def notify(app, fields):
    return app.test_client().post("/payments/systempay/ipn", data=fields)


def credits(app, household_id):
    with app.app_context():
        return db.session.scalars(sa.select(LedgerEntry).where(
            LedgerEntry.household_id == household_id, LedgerEntry.kind == EntryKind.CARD_PAYMENT,
            LedgerEntry.external_ref.like("systempay:%"))).all()


def state(app, transaction):
    with app.app_context():
        return db.session.get(PaymentTransaction, transaction.id)


def test_a_paid_notification_credits_once(app, created, demo):
    with app.app_context():
        before = ledger.household_balance(demo["retard"])
    fields = notification(created)
    response = notify(app, fields)
    assert response.status_code == 200 and response.get_data(as_text=True) == "OK"
    assert response.mimetype == "text/plain" and response.location is None
    again = notify(app, fields)
    assert again.status_code == 200 and "already" in again.get_data(as_text=True)
    [credit] = credits(app, demo["retard"])
    assert credit.amount == Decimal("200.00")
    with app.app_context():
        assert ledger.household_balance(demo["retard"]) == before - Decimal("200.00")
        assert db.session.scalar(sa.select(OutgoingMail).where(OutgoingMail.recipient == "retard@example.org"))
    assert state(app, created).status is PaymentStatus.PAID


def test_two_deliveries_at_the_same_time_credit_once(app, created, demo):
    fields = notification(created)
    barrier, answers = threading.Barrier(2), []

    def deliver():
        client = app.test_client()
        barrier.wait()
        answers.append(client.post("/payments/systempay/ipn", data=fields).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [200, 200]
    assert len(credits(app, demo["retard"])) == 1


@pytest.mark.parametrize("tamper", ["bad_signature", "no_signature", "altered_amount"])
def test_unsigned_or_altered_notifications_are_refused(app, created, demo, tamper):
    fields = notification(created)
    if tamper == "bad_signature":
        fields["signature"] = fields["signature"][::-1]
    elif tamper == "no_signature":
        del fields["signature"]
    else:
        fields["vads_amount"] = "1"
    response = notify(app, fields)
    assert response.status_code == 400
    assert credits(app, demo["retard"]) == [] and state(app, created).status is PaymentStatus.CREATED


def test_the_test_key_is_refused_when_the_portal_runs_in_production(app, created, demo):
    app.config.update(SYSTEMPAY_CTX_MODE="PRODUCTION", SYSTEMPAY_KEY_PRODUCTION="production-key-0000")
    try:
        assert notify(app, notification(created)).status_code == 400
        wrong_mode = notification(created, key="production-key-0000", vads_ctx_mode="PRODUCTION")
        response = notify(app, wrong_mode)  # well signed, but not the mode the payment was created in
        assert response.status_code == 200 and "review" in response.get_data(as_text=True)
    finally:
        app.config.update(SYSTEMPAY_CTX_MODE="TEST", SYSTEMPAY_KEY_PRODUCTION=None)
    assert credits(app, demo["retard"]) == []
    assert state(app, created).status is PaymentStatus.REVIEW


def test_unknown_order_is_refused(app, created, demo):
    response = notify(app, notification(created, vads_order_id="EL-20260101-000001"))
    assert response.status_code == 404 and credits(app, demo["retard"]) == []


@pytest.mark.parametrize("field, value", [("vads_amount", "100"), ("vads_currency", "840"),
                                          ("vads_site_id", "99999999")])
def test_a_mismatch_is_kept_for_review_never_credited(app, created, demo, field, value, client_for):
    response = notify(app, notification(created, **{field: value}))
    assert response.status_code == 200
    assert credits(app, demo["retard"]) == []
    transaction = state(app, created)
    assert transaction.status is PaymentStatus.REVIEW and field in transaction.review_reason
    page = text(client_for("gestionnaire@example.org").get("/staffpaymentreviewview/list/"))
    assert transaction.order_id in page


@pytest.mark.parametrize("status", ["REFUSED", "ABANDONED", "ACCEPTED", "CANCELLED"])
def test_failed_or_card_check_notifications_do_not_credit(app, created, demo, status):
    assert notify(app, notification(created, status=status)).status_code == 200
    assert credits(app, demo["retard"]) == []
    assert state(app, created).status is PaymentStatus.FAILED


def test_a_late_failure_never_undoes_a_payment(app, created, demo):
    notify(app, notification(created))
    notify(app, notification(created, status="CANCELLED"))
    assert len(credits(app, demo["retard"])) == 1
    assert state(app, created).status is PaymentStatus.REVIEW


def test_household_wide_payment_is_spread_over_the_leases_that_owe(app, client_for, demo):
    client = client_for("locataire@example.org")
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        for lease in household.leases:
            db.session.add(LedgerEntry(household_id=household.id, lease_id=lease.id, kind=EntryKind.REGULARISATION,
                                       direction=Direction.DEBIT,
                                       amount=Decimal("10.00"), label="Test", entry_date=date.today()))
        db.session.commit()
        owed = {lease.id: ledger.lease_balance(lease.id) for lease in household.leases}
    pay(client, "1000")
    [transaction] = transactions(app)
    notify(app, notification(transaction))
    entries = credits(app, demo["locataire"])
    assert sum(e.amount for e in entries) == Decimal("1000.00")
    assert {e.lease_id for e in entries} == set(owed)


# --- the way back ---------------------------------------------------------------------------------------------------

def test_return_page_shows_the_database_not_the_url(app, client_for, created, demo):
    client = client_for("retard@example.org")
    forged = client.get(f"/paiement/retour/{created.order_id}?vads_trans_status=CAPTURED&vads_result=00"
                        "&signature=forged")
    assert "Paiement en cours de confirmation" in text(forged)
    assert credits(app, demo["retard"]) == []
    notify(app, notification(created))
    assert "Paiement confirmé par la banque" in text(client.get(f"/paiement/retour/{created.order_id}"))
    assert client_for("locataire@example.org").get(f"/paiement/retour/{created.order_id}").status_code == 404


def test_card_receipt_is_rendered_by_the_job_and_only_for_the_payer(app, client_for, created, demo):
    notify(app, notification(created))
    with app.app_context():
        payments.render_card_receipts()  # the demo's own card payments have no receipt yet either
        assert db.session.get(PaymentTransaction, created.id).receipt_stored_name
        assert payments.render_card_receipts() == 0
    response = client_for("retard@example.org").get(f"/paiement/recu/{created.id}")
    assert response.status_code == 200 and response.data[:4] == b"%PDF"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert client_for("locataire@example.org").get(f"/paiement/recu/{created.id}").status_code == 404


def test_staff_reconciliation_totals_per_day(app, client_for, created):
    notify(app, notification(created))
    page = text(client_for("gestionnaire@example.org").get(
        f"/staffreconciliationview/?mois={created.trans_day:%Y-%m}"))
    assert "200,00 €" in page


# --- the monthly rent call ------------------------------------------------------------------------------------------

def test_rent_call_is_complete_and_idempotent(app, demo):
    with app.app_context():
        today = date.today()
        first = rent_calls.next_period(today)
        period = f"{first:%Y-%m}"
        ended = db.session.get(Lease, demo["other_lease"])
        ended.end_date = today - timedelta(days=1)
        db.session.commit()
        active = db.session.scalar(sa.select(sa.func.count(Lease.id)).where(
            sa.or_(Lease.end_date.is_(None), Lease.end_date >= first)))
        with_benefit = db.session.scalar(sa.select(sa.func.count(Lease.id)).where(
            sa.or_(Lease.end_date.is_(None), Lease.end_date >= first), Lease.housing_benefit > 0))
        assert rent_calls.call_rents(first, utcnow()) == active
        assert rent_calls.call_rents(first, utcnow()) == 0
        notices = db.session.scalars(sa.select(LedgerEntry).where(
            LedgerEntry.period == period, LedgerEntry.kind == EntryKind.DUE_NOTICE)).all()
        assert len(notices) == active and demo["other_lease"] not in {n.lease_id for n in notices}
        assert all(n.amount == n.rent_part + n.charges_part and n.due_date == first.replace(day=10) for n in notices)
        assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id)).where(
            LedgerEntry.period == period, LedgerEntry.kind == EntryKind.HOUSING_BENEFIT)) == with_benefit
        assert db.session.scalar(sa.select(sa.func.count(Document.id)).where(
            Document.period == period, Document.kind == DocumentKind.DUE_NOTICE)) == active


def test_rent_call_mails_paperless_households_once(app, demo):
    with app.app_context():
        for household_id in (demo["locataire"], demo["retard"]):
            db.session.get(Household, household_id).paperless_consent = True
        db.session.commit()
        first = rent_calls.next_period(date.today())
        rent_calls.call_rents(first, utcnow())
        rent_calls.call_rents(first, utcnow())
        recipients = db.session.scalars(sa.select(OutgoingMail.recipient).where(
            OutgoingMail.subject.like("Votre avis d'échéance%"))).all()
    assert sorted(recipients) == ["locataire@example.org", "retard@example.org"]


def test_call_rents_command(app, demo):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["call-rents", "--month", "2026-13"]).exit_code != 0
    assert runner.invoke(args=["call-rents", "--month", "décembre"]).exit_code != 0
    first = rent_calls.next_period(date.today())
    result = runner.invoke(args=["call-rents", "--month", f"{first:%Y-%m}"])
    assert result.exit_code == 0 and "due notices created" in result.output
