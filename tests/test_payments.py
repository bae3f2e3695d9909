"""Card payment through the bank's hosted page (Systempay protocol), the notification as the only proof of payment,
and the monthly rent call. The bank is the only stand-in, and it is played here by signing with the real rules."""

from __future__ import annotations

import html
import re
import threading
import uuid
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from app import filestore
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
    ("1E308", "Saisissez un montant en euros"),  # was a 500 (quantize)
    ("1_0", "Saisissez un montant en euros"),  # Decimal() reads 10
    ("Infinity", "Saisissez un montant en euros"),
    ("NaN", "Saisissez un montant en euros"),
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


# --- what the pay form proposes and accepts follows the chosen lease -----------------------------------------------

def owe(app, household_id, amounts):
    """Add a debit of each amount to the household's leases, in order; returns the lease ids."""
    with app.app_context():
        household = db.session.get(Household, household_id)
        leases = sorted(household.leases, key=lambda lease: lease.id)
        for lease, amount in zip(leases, amounts):
            db.session.add(LedgerEntry(household_id=household.id, lease_id=lease.id, kind=EntryKind.REGULARISATION,
                                       direction=Direction.DEBIT, amount=Decimal(amount), label="Test",
                                       entry_date=date.today()))
        db.session.commit()
        return [lease.id for lease in leases]


def net_rent(app, lease_id):
    with app.app_context():
        lease = db.session.get(Lease, lease_id)
        return lease.rent + lease.charges - lease.housing_benefit


def test_pay_limits_are_what_the_scope_owes_plus_one_month(app, demo):
    dwelling, parking = owe(app, demo["locataire"], ["40.00", "12.34"])
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        today = date.today()
        assert payments.pay_limits(household, db.session.get(Lease, parking), today) == (
            Decimal("12.34"), Decimal("12.34") + net_rent(app, parking))
        assert payments.pay_limits(household, None, today) == (
            Decimal("52.34"), Decimal("52.34") + net_rent(app, dwelling) + net_rent(app, parking))
        db.session.get(Lease, parking).end_date = today - timedelta(days=1)  # an ended lease: no month ahead
        assert payments.pay_limits(household, db.session.get(Lease, parking), today) == (Decimal("12.34"),) * 2
        db.session.rollback()
    owe(app, demo["locataire"], ["2990.00"])
    with app.app_context():  # never above PAYMENT_MAX_AMOUNT, and never proposing more than can be paid
        household = db.session.get(Household, demo["locataire"])
        assert payments.pay_limits(household, None, date.today()) == (Decimal("3000.00"), Decimal("3000.00"))


def option(page, value):
    return re.search(r'<option[^>]*value="%s"[^>]*>' % value, page).group(0)


def test_pay_page_proposes_what_the_chosen_lease_owes(app, client_for, demo):
    dwelling, parking = owe(app, demo["locataire"], ["40.00", "12.34"])
    maximum = str(Decimal("12.34") + net_rent(app, parking)).replace(".", ",")
    client = client_for("locataire@example.org")
    page = text(client.get(f"/paiement/?contrat={parking}"))
    assert 'value="12,34"' in page and "selected" in option(page, parking)
    assert re.search(r'<span id="pay-maximum">' + re.escape(maximum) + r"\s€</span>", page), page[-3000:]
    # every choice carries its own amounts for the page's script
    assert 'data-amount="52,34"' in option(page, "") and 'data-amount="40,00"' in option(page, dwelling)
    assert 'data-amount="12,34"' in option(page, parking)
    assert '<script src="/static/js/pay-amount.js"' in page
    default = text(client.get("/paiement/"))
    assert 'value="52,34"' in default and "selected" in option(default, "")


def test_pay_page_ignores_a_lease_of_another_household(app, client_for, demo):
    owe(app, demo["retard"], ["77.77"])
    with app.app_context():
        other = db.session.get(Lease, demo["retard_lease"]).display_number
    client = client_for("locataire@example.org")
    for value in (demo["retard_lease"], "abc", "999999"):
        response = client.get(f"/paiement/?contrat={value}")
        page = text(response)
        assert response.status_code == 200 and 'value="0,00"' in page
        assert other not in page and "77,77" not in page


def test_pay_form_refuses_more_than_the_chosen_lease_allows(app, client_for, demo):
    _, parking = owe(app, demo["locataire"], ["40.00", "12.34"])
    maximum = Decimal("12.34") + net_rent(app, parking)
    client = client_for("locataire@example.org")
    too_much = pay(client, str(maximum + Decimal("0.01")).replace(".", ","), lease=str(parking))
    assert too_much.status_code == 400
    page = text(too_much)
    shown = str(maximum).replace(".", ",")
    assert re.search(r'id="amount-error">Vous pouvez payer au plus ' + re.escape(shown) + r"\s€ pour ce choix", page)
    assert re.search(r'<span id="pay-maximum">' + re.escape(shown), page)  # the page says the chosen maximum
    assert transactions(app) == []
    assert pay(client, str(maximum), lease=str(parking)).status_code == 200
    [transaction] = transactions(app)
    assert transaction.amount == maximum and transaction.lease_id == parking


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
              "vads_operation_type": "DEBIT", "vads_hash": uuid.uuid4().hex}
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


def reversals(app, household_id):
    with app.app_context():
        return db.session.scalars(sa.select(LedgerEntry).where(
            LedgerEntry.household_id == household_id, LedgerEntry.kind == EntryKind.CARD_REVERSAL)
            .order_by(LedgerEntry.id)).all()


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
    assert deliver_twice_at_once(app, notification(created)) == [200, 200]
    assert len(credits(app, demo["retard"])) == 1


def deliver_twice_at_once(app, fields) -> list[int]:
    """The bank's notification delivered by two threads at the same moment; returns both HTTP statuses."""
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
    return answers


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


def test_a_failure_of_another_attempt_never_undoes_a_payment(app, created, demo):
    notify(app, notification(created))
    notify(app, notification(created, status="CANCELLED"))  # another vads_trans_uuid: not the transaction paid
    assert len(credits(app, demo["retard"])) == 1 and reversals(app, demo["retard"]) == []
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
    pay(client, "300")  # more than owed (20,00 €), less than a month ahead: the rest stays as a credit
    [transaction] = transactions(app)
    notify(app, notification(transaction))
    entries = credits(app, demo["locataire"])
    assert sum(e.amount for e in entries) == Decimal("300.00")
    assert {e.lease_id for e in entries} == set(owed)


# --- the bank undoing a credited payment: cancellation after payment, refund ----------------------------------------

def mails(app, recipient):
    with app.app_context():
        return db.session.scalars(sa.select(OutgoingMail).where(OutgoingMail.recipient == recipient)
                                  .order_by(OutgoingMail.id)).all()


@pytest.mark.parametrize("status", ["CAPTURE_FAILED", "CANCELLED", "REFUSED", "EXPIRED"])
def test_a_cancellation_after_payment_reverses_the_credit_once(app, client_for, created, demo, status):
    with app.app_context():
        before = ledger.household_balance(demo["retard"])
    paid = notification(created)
    notify(app, paid)
    undone = notification(created, status=status, vads_trans_uuid=paid["vads_trans_uuid"], vads_operation_type="",
                          vads_url_check_src="BATCH")  # the bank leaves the operation type out of a cancellation
    response = notify(app, undone)
    assert response.status_code == 200 and response.get_data(as_text=True) == "OK"
    [credit] = credits(app, demo["retard"])
    [reversal] = reversals(app, demo["retard"])
    assert reversal.reverses_id == credit.id and reversal.amount == credit.amount
    assert reversal.direction is Direction.DEBIT and reversal.lease_id == credit.lease_id
    assert reversal.external_ref == f"systempay-reversal:{paid['vads_trans_uuid']}:{credit.id}"
    with app.app_context():
        assert ledger.household_balance(demo["retard"]) == before
    transaction = state(app, created)
    assert transaction.status is PaymentStatus.REVIEW and transaction.reversed_at is not None
    assert transaction.review_reason == f"annulé par la banque ({status}) après encaissement"
    assert transaction.check_src == "BATCH" and transaction.operation_type == "DEBIT"
    assert "a été annulé" in mails(app, "retard@example.org")[-1].subject
    again = notify(app, undone)  # the bank retries: nothing more
    assert again.status_code == 200 and "already" in again.get_data(as_text=True)
    assert notify(app, paid).get_data(as_text=True) == "OK: already processed"  # nor is it credited again
    assert len(reversals(app, demo["retard"])) == 1 and len(credits(app, demo["retard"])) == 1
    assert len(mails(app, "retard@example.org")) == 2  # confirmed, then cancelled
    assert created.order_id in text(client_for("gestionnaire@example.org").get("/staffpaymentreviewview/list/"))


def test_two_cancellations_at_the_same_time_reverse_once(app, created, demo):
    paid = notification(created)
    notify(app, paid)
    fields = notification(created, status="CANCELLED", vads_trans_uuid=paid["vads_trans_uuid"])
    assert deliver_twice_at_once(app, fields) == [200, 200]
    assert len(reversals(app, demo["retard"])) == 1


def test_a_reversed_payment_loses_its_quittance_and_its_receipt(app, client_for, demo):
    """locataire@example.org pays next month's parking by card: a quittance and a receipt, until the bank cancels."""
    with app.app_context():
        first = rent_calls.next_period(date.today())
        rent_calls.call_rents(first, utcnow())
        parking = next(lease for lease in db.session.get(Household, demo["locataire"]).leases
                       if lease.unit.kind.name != "DWELLING")
        parking_id, owed = parking.id, ledger.lease_balance(parking.id)
    period = f"{first:%Y-%m}"
    client = client_for("locataire@example.org")
    pay(client, str(owed).replace(".", ","), lease=str(parking_id))
    [transaction] = transactions(app)
    paid = notification(transaction)
    notify(app, paid)
    with app.app_context():
        payments.render_card_receipts()
        stored = payments.receipt_key(db.session.get(PaymentTransaction, transaction.id))
    assert client.get(f"/paiement/recu/{transaction.id}").status_code == 200
    quittance = client.get(f"/documents/recu/{parking_id}/{period}")
    assert quittance.status_code == 200 and "quittance" in quittance.headers["Content-Disposition"]
    assert "Reçu de paiement" in text(client.get("/paiement/"))

    notify(app, notification(transaction, status="CANCELLED", vads_trans_uuid=paid["vads_trans_uuid"]))
    assert client.get(f"/paiement/recu/{transaction.id}").status_code == 404
    with app.app_context():
        assert stored is not None and not filestore.exists(stored)
    assert state(app, transaction).receipt_stored_name is None
    with app.app_context():
        assert payments.render_card_receipts() == 0  # the job does not render it again
        assert db.session.scalar(sa.select(Document).where(
            Document.lease_id == parking_id, Document.kind == DocumentKind.RECEIPT, Document.period == period)) is None
    assert client.get(f"/documents/recu/{parking_id}/{period}").status_code == 404
    page = text(client.get("/paiement/"))
    assert "À vérifier (annulé ou remboursé par la banque)" in page and "Reçu de paiement" not in page


def test_a_cancellation_of_a_paid_payment_whose_credit_is_not_found_is_kept_for_review(app, demo):
    """The demo's card payments were credited without the bank's reference: nothing to reverse, so staff decide."""
    with app.app_context():
        paid = db.session.scalars(sa.select(PaymentTransaction).where(
            PaymentTransaction.status == PaymentStatus.PAID).order_by(PaymentTransaction.id)).first()
        before = ledger.household_balance(paid.household_id)
    response = notify(app, notification(paid, status="CANCELLED", vads_trans_uuid=paid.trans_uuid))
    assert response.status_code == 200 and "review" in response.get_data(as_text=True)
    transaction = state(app, paid)
    assert transaction.status is PaymentStatus.REVIEW and transaction.reversed_at is None
    assert transaction.review_reason.startswith("annulé par la banque (CANCELLED) après encaissement ; rien n'a")
    with app.app_context():
        assert ledger.household_balance(paid.household_id) == before


def refund(transaction, cents, status="CAPTURED", **overrides):
    """The bank's notification of a refund made in its back office: a transaction of its own for the same order."""
    return notification(transaction, status=status, vads_operation_type="CREDIT", vads_amount=str(cents),
                        vads_trans_id="000001", vads_url_check_src="MERCH_BO", **overrides)


def test_a_refund_reverses_the_refunded_amount_once(app, client_for, created, demo):
    with app.app_context():
        before = ledger.household_balance(demo["retard"])
    notify(app, notification(created))
    part = refund(created, 5000)
    response = notify(app, part)
    assert response.status_code == 200 and response.get_data(as_text=True) == "OK"
    assert notify(app, part).get_data(as_text=True) == "OK: already processed"
    with app.app_context():
        assert ledger.household_balance(demo["retard"]) == before - Decimal("150.00")
    [original, kept] = credits(app, demo["retard"])
    [reversal] = reversals(app, demo["retard"])
    assert reversal.reverses_id == original.id and kept.amount == Decimal("150.00")
    assert reversal.external_ref.startswith(f"systempay-reversal:{part['vads_trans_uuid']}:")
    transaction = state(app, created)
    assert transaction.status is PaymentStatus.REVIEW and transaction.reversed_at is not None
    assert transaction.operation_type == "CREDIT" and transaction.check_src == "MERCH_BO"
    assert "remboursé par la banque : 50,00" in transaction.review_reason
    mail = mails(app, "retard@example.org")[-1]
    assert "remboursé" in mail.subject and "50,00" in mail.text_body
    notify(app, refund(created, 15000))  # the rest, later: the payment is now fully undone
    with app.app_context():
        assert ledger.household_balance(demo["retard"]) == before
    assert len(reversals(app, demo["retard"])) == 2


def test_a_refund_is_spread_over_the_payment_credits_in_order(app, client_for, demo):
    owe(app, demo["locataire"], ["10.00", "10.00"])
    pay(client_for("locataire@example.org"), "300")
    [transaction] = transactions(app)
    notify(app, notification(transaction))
    first, second = credits(app, demo["locataire"])  # 290,00 € on the first lease (with the surplus), 10,00 € next
    notify(app, refund(transaction, 29500))
    reversed_ = reversals(app, demo["locataire"])
    assert [(r.reverses_id, r.amount) for r in reversed_] == [(first.id, first.amount), (second.id, second.amount)]
    kept = [e for e in credits(app, demo["locataire"]) if e.id not in (first.id, second.id)]
    assert [(e.lease_id, e.amount) for e in kept] == [(second.lease_id, Decimal("5.00"))]


@pytest.mark.parametrize("cents", [20001, 0])
def test_a_refund_of_more_than_was_paid_is_kept_for_review(app, created, demo, cents):
    notify(app, notification(created))
    assert "review" in notify(app, refund(created, cents)).get_data(as_text=True)
    assert reversals(app, demo["retard"]) == [] and "vads_amount" in state(app, created).review_reason


def test_a_refund_of_a_payment_never_credited_is_kept_for_review(app, created, demo):
    assert "review" in notify(app, refund(created, 5000)).get_data(as_text=True)
    assert reversals(app, demo["retard"]) == []
    reason = state(app, created).review_reason
    assert reason.startswith("remboursé par la banque : 50,00") and "rien n'a été annulé" in reason


def test_a_refund_not_done_changes_nothing(app, created, demo):
    notify(app, notification(created))
    assert notify(app, refund(created, 5000, status="REFUSED")).get_data(as_text=True) == "OK"
    assert reversals(app, demo["retard"]) == [] and state(app, created).status is PaymentStatus.PAID


# --- the operation type and the source of the notification --------------------------------------------------------

def test_operation_type_and_source_are_stored(app, created):
    notify(app, notification(created, vads_url_check_src="RETRY"))
    transaction = state(app, created)
    assert transaction.status is PaymentStatus.PAID
    assert (transaction.operation_type, transaction.check_src) == ("DEBIT", "RETRY")


@pytest.mark.parametrize("operation", ["VERIFICATION", "", "SOMETHING"])
def test_only_a_debit_credits_money(app, created, demo, operation):
    response = notify(app, notification(created, vads_operation_type=operation))
    assert response.status_code == 200 and "review" in response.get_data(as_text=True)
    assert credits(app, demo["retard"]) == []
    transaction = state(app, created)
    assert transaction.status is PaymentStatus.REVIEW and "type d'opération inconnu" in transaction.review_reason


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


def test_the_bank_sends_the_browser_back_with_no_personal_data(app, client_for, demo, monkeypatch, caplog):
    """vads_return_mode=NONE: the return URL carries no field (with GET it carried the tenant's e-mail into access
    logs and browser history); the sandbox plays the bank the same way, and nothing logs the e-mail."""
    import logging

    from app.payments import views as sandbox

    caplog.set_level(logging.DEBUG)
    sent = []
    monkeypatch.setattr(sandbox, "_notify", lambda url, fields: sent.append((url, fields)))
    client = client_for("retard@example.org")
    page = pay(client, "125,50").get_data(as_text=True)
    fields = {name: html.unescape(value)
              for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}
    assert fields["vads_return_mode"] == "NONE" and fields["vads_cust_email"] == "retard@example.org"
    assert client.post("/sandbox/systempay/vads-payment/", data=fields).status_code == 200
    back = client.post("/sandbox/systempay/vads-payment/decision", data=dict(fields, outcome="accepted"))
    assert back.status_code == 302 and back.location == fields["vads_url_return"]
    assert "?" not in back.location and "example.org" not in back.location
    [(url, notification_fields)] = sent
    assert url.endswith("/payments/systempay/ipn")
    assert notify(app, notification_fields).get_data(as_text=True) == "OK"
    assert "Paiement confirmé par la banque" in text(client.get(urlsplit(back.location).path))
    assert "retard@example.org" not in caplog.text and "retard%40example.org" not in caplog.text


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


def test_the_job_renders_recent_receipts_only_older_ones_on_first_download(app, client_for, demo):
    """The demo's history of card payments (notified months ago) is not rendered by the job at the first start: a
    web page would wait behind wkhtmltopdf. Its receipt is made when the tenant asks for it."""
    with app.app_context():
        old = db.session.scalars(sa.select(PaymentTransaction).join(Household).where(
            PaymentTransaction.status == PaymentStatus.PAID, Household.email == "retard@example.org")
            .order_by(PaymentTransaction.notified_at)).first()
        assert old.notified_at < utcnow() - timedelta(days=30) and old.receipt_stored_name is None
        assert payments.render_card_receipts() == 0
        assert db.session.get(PaymentTransaction, old.id).receipt_stored_name is None
        old_id = old.id
    response = client_for("retard@example.org").get(f"/paiement/recu/{old_id}")
    assert response.status_code == 200 and response.data[:4] == b"%PDF"
    with app.app_context():
        assert db.session.get(PaymentTransaction, old_id).receipt_stored_name  # kept for the next time


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
