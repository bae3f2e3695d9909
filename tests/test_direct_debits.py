"""The direct-debit money cycle (issue 10): pre-notification, the collection file on a business day with the message
id we store and only SEPA characters, settlement on the collection date (never before), several leases under one
mandate, rejects and returns that withdraw quittances, and the staff's file and bank-answer screens."""

from __future__ import annotations

import html
import io
import threading
from datetime import date, timedelta
from decimal import Decimal
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app import create_app, filestore
from app.extensions import db
from app.models import (
    BankFileImport, CollectionStatus, Direction, DirectDebitBatch, DirectDebitCollection, DirectDebitMandate, Document, DocumentKind,
    EntryKind, Household, LedgerEntry, OutgoingMail, utcnow,
)
from app.pain008 import sepa_text
from app.services import direct_debits, documents, ledger, rent_calls
from app.services.sepa import SepaError
from config import ConfigError, TestingConfig
from tests import bank_files
from tests.conftest import csrf_token
from tests.test_sepa import validate_against_xsd

NS = {"p": "*"}


def text(response) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


class Cycle:
    """locataire@example.org (a dwelling and a parking under one mandate) through one month of direct debit."""

    def __init__(self, app, demo):
        self.app, self.demo = app, demo
        self.month = rent_calls.next_period(date.today())
        self.period = f"{self.month:%Y-%m}"
        with app.app_context():
            mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
                DirectDebitMandate.household_id == demo["locataire"]))
            self.mandate_id, self.day = mandate.id, mandate.debit_day
            self.lease_ids = [lease.id for lease in mandate.leases]
            self.date = direct_debits.collection_date_for(self.day, self.month)
            rent_calls.call_rents(self.month, utcnow())

    def owed(self) -> dict[int, Decimal]:
        with self.app.app_context():
            return ledger.lease_balances(self.lease_ids)

    def prenotify(self, today=None) -> int:
        with self.app.app_context():
            return direct_debits.prenotify(today or self.month - timedelta(days=20), utcnow())

    def build(self, today=None) -> DirectDebitBatch:
        with self.app.app_context():
            return direct_debits.build_file(self.period, self.day, today or self.date - timedelta(days=5), utcnow())

    def settle(self, today) -> int:
        with self.app.app_context():
            return direct_debits.settle(today, utcnow())

    def collection(self) -> DirectDebitCollection:
        with self.app.app_context():
            collection = db.session.scalar(sa.select(DirectDebitCollection).where(
                DirectDebitCollection.mandate_id == self.mandate_id, DirectDebitCollection.period == self.period))
            if collection is not None:
                collection.shares, collection.batch, collection.mandate  # loaded before the context ends
            return collection

    def credits(self) -> list[LedgerEntry]:
        with self.app.app_context():
            return db.session.scalars(sa.select(LedgerEntry).where(
                LedgerEntry.lease_id.in_(self.lease_ids), LedgerEntry.kind == EntryKind.DIRECT_DEBIT,
                LedgerEntry.period == self.period)).all()


@pytest.fixture
def cycle(app, demo):
    return Cycle(app, demo)


# --- 1. settlement: no credit, no quittance before the money arrives --------------------------------------------

def test_a_direct_debit_is_credited_on_its_collection_date_not_before(app, client_for, cycle):
    owed = cycle.owed()
    assert cycle.prenotify() >= 1 and cycle.collection().status is CollectionStatus.NOTIFIED
    batch = cycle.build()
    assert batch.collection_date == cycle.date
    assert cycle.credits() == []  # the file is built: the bank has not paid yet
    assert cycle.owed() == owed
    with app.app_context():
        lease = db.session.get(Household, cycle.demo["locataire"]).leases[0]
        with pytest.raises(documents.DocumentUnavailable):  # no quittance for money not received
            documents.receipt_for(lease, cycle.period)
    client = client_for("locataire@example.org")
    page = text(client.get("/paiement/"))
    label = f"Prélèvement du {cycle.date.day} "
    assert label in page and "(à venir)" in page
    assert cycle.settle(cycle.date - timedelta(days=1)) == 0
    assert cycle.settle(cycle.date) >= 1 and cycle.collection().status is CollectionStatus.SETTLED
    assert cycle.settle(cycle.date + timedelta(days=3)) == 0  # once
    credits = cycle.credits()
    assert sorted(c.lease_id for c in credits) == sorted(lease_id for lease_id, amount in owed.items() if amount > 0)
    assert all(c.entry_date == cycle.date for c in credits)
    assert all(amount == Decimal("0.00") for amount in cycle.owed().values())
    assert "(à venir)" not in text(client.get("/paiement/"))
    with app.app_context():
        lease = db.session.get(Household, cycle.demo["locataire"]).leases[0]
        assert documents.receipt_for(lease, cycle.period).key is not None  # a quittance now


def test_the_dwelling_and_the_parking_are_both_collected(app, cycle):
    owed = cycle.owed()
    assert len(owed) == 2 and all(amount > 0 for amount in owed.values())
    cycle.prenotify()
    collection = cycle.collection()
    assert {share.lease_id: share.amount for share in collection.shares} == owed
    assert collection.amount == collection.notified_amount == sum(owed.values())
    cycle.build()
    cycle.settle(cycle.date)
    assert cycle.owed() == {lease_id: Decimal("0.00") for lease_id in owed}


# --- calendar ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("debit_day, month, expected", [
    (2, date(2027, 1, 1), date(2027, 1, 4)),     # Saturday 2 January -> Monday 4
    (10, date(2027, 1, 1), date(2027, 1, 11)),   # Sunday 10 January -> Monday 11
    (7, date(2026, 12, 1), date(2026, 12, 7)),   # a Monday stays
    (2, date(2027, 4, 1), date(2027, 4, 2)),     # Friday 2 April 2027 is no holiday
])
def test_collection_dates_are_target2_business_days(debit_day, month, expected):
    assert direct_debits.collection_date_for(debit_day, month) == expected


def test_good_friday_and_easter_monday_are_closed():
    assert direct_debits.business_day_from(date(2027, 3, 26)) == date(2027, 3, 30)  # Fri, Sat, Sun, Mon closed
    assert direct_debits.business_day_from(date(2026, 12, 25)) == date(2026, 12, 28)
    assert direct_debits.add_business_days(date(2026, 12, 24), 1) == date(2026, 12, 28)


def test_a_file_missed_while_the_scheduler_was_down_is_built_late_once(app, cycle):
    cycle.prenotify()
    build_day = cycle.date - timedelta(days=app.config["SEPA_LEAD_DAYS"])
    with app.app_context():
        assert direct_debits.due_files(build_day - timedelta(days=1), utcnow()) == 0  # not yet
        late = build_day + timedelta(days=2)  # the job did not run on the build day
        assert direct_debits.due_files(late, utcnow()) >= 1
        assert direct_debits.due_files(late, utcnow()) == 0  # never twice
        batch = db.session.scalar(sa.select(DirectDebitBatch).where(
            DirectDebitBatch.period == cycle.period, DirectDebitBatch.debit_day == cycle.day))
        assert batch.collection_date >= direct_debits.earliest_collection(late)
        assert direct_debits.is_business_day(batch.collection_date)


def test_a_file_built_too_late_for_its_date_moves_to_the_first_possible_business_day(app, cycle):
    cycle.prenotify()
    batch = cycle.build(today=cycle.date)  # the collection date itself: too late for the bank
    with app.app_context():
        assert batch.collection_date == direct_debits.add_business_days(cycle.date, 1)


# --- the file ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schema", ["pain.008.001.08", "pain.008.001.02"])
def test_the_file_carries_the_stored_message_id_and_only_sepa_characters(app, cycle, schema):
    with app.app_context():
        mandate = db.session.get(DirectDebitMandate, cycle.mandate_id)
        mandate.account_holder = 'Zoé & "Hervé" <Müller>; @#_'
        mandate.holder_street = "12 rue de l'Église & Cie #3"
        mandate.holder_city = "Saint-Étienne"
        db.session.commit()
    cycle.prenotify()
    app.config["SEPA_SCHEMA"] = schema
    try:
        batch = cycle.build()
        with app.app_context():
            xml = filestore.load(direct_debits.batch_key(batch))
    finally:
        app.config["SEPA_SCHEMA"] = "pain.008.001.08"
    validate_against_xsd(xml, schema)
    root = ElementTree.fromstring(xml)
    assert root.find(".//p:GrpHdr/p:MsgId", NS).text == batch.message_id
    assert cycle.collection().end_to_end_id in [e.text for e in root.findall(".//p:DrctDbtTxInf/p:PmtId/p:EndToEndId", NS)]
    assert root.find(".//p:ReqdColltnDt", NS).text == cycle.date.isoformat()
    for element in root.iter():
        if element.text and element.text.strip():
            assert sepa_text(element.text, 1000) == element.text.strip() or element.tag.endswith("}CreDtTm"), \
                (element.tag, element.text)
    assert b"Zoe Herve Muller" in xml
    if schema != "pain.008.001.02":
        assert b"Saint-Etienne" in xml and b"12 rue de l'Eglise Cie 3" in xml


def test_sepa_text_transliterates_and_drops_the_rest():
    assert sepa_text("Ærøskøbing & Fils <SARL>_; « Émile »") == "AEroskobing Fils SARL Emile"
    assert sepa_text("a" * 100) == "a" * 70


# --- pre-notification ----------------------------------------------------------------------------------------------

def test_the_start_refuses_a_rent_call_too_late_for_the_pre_notification(tmp_path):
    with pytest.raises(ConfigError, match="RENT_CALL_DAY=25"):
        create_app(TestingConfig(), INSTANCE_DIR=tmp_path, RENT_CALL_DAY=25)
    assert direct_debits.calendar_problem(15, 14) is None
    assert direct_debits.calendar_problem(25, 5) is None  # a mandate that agreed a shorter period
    assert direct_debits.calendar_problem(17, 14) is not None


def test_no_pre_notification_closer_than_the_agreed_period(app, cycle):
    cycle.prenotify(today=cycle.date - timedelta(days=13))
    assert cycle.collection() is None
    assert cycle.prenotify(today=cycle.date - timedelta(days=14)) >= 1 and cycle.collection() is not None
    assert cycle.prenotify(today=cycle.date - timedelta(days=14)) == 0  # once per mandate and month


def test_the_collected_amount_never_exceeds_the_notified_one(app, cycle, mailbox):
    cycle.prenotify()
    notified = cycle.collection().notified_amount
    with app.app_context():  # a charge regularisation after the notice: it waits for next month
        db.session.add(LedgerEntry(household_id=cycle.demo["locataire"], lease_id=cycle.lease_ids[0],
                                   kind=EntryKind.REGULARISATION, direction=Direction.DEBIT, amount=Decimal("80.00"),
                                   label="Régularisation", entry_date=date.today()))
        db.session.commit()
    cycle.build()
    assert cycle.collection().amount == notified
    mailbox.deliver()
    message = mailbox.last_to("locataire@example.org")
    body = message.get_body(("plain",)).get_content()
    assert "Prélèvement du" in message["Subject"] and "FR72ZZZ123456" in body
    assert cycle.collection().mandate.reference in body


def test_a_payment_after_the_notice_lowers_the_collection(app, cycle):
    cycle.prenotify()
    notified = cycle.collection().notified_amount
    with app.app_context():
        before = direct_debits.preview(cycle.period, cycle.day, cycle.date - timedelta(days=5))
    with app.app_context():
        db.session.add(LedgerEntry(household_id=cycle.demo["locataire"], lease_id=cycle.lease_ids[0],
                                   kind=EntryKind.TRANSFER, direction=Direction.CREDIT, amount=Decimal("10.00"),
                                   label="Virement", entry_date=date.today()))
        db.session.commit()
    with app.app_context():
        preview = direct_debits.preview(cycle.period, cycle.day, cycle.date - timedelta(days=5))
    assert preview.total == before.total - Decimal("10.00") and preview.count == before.count
    cycle.build()
    collection = cycle.collection()
    assert collection.amount == notified - Decimal("10.00")
    shares = {share.lease_id: share.amount for share in collection.shares}
    assert sum(shares.values()) == collection.amount
    cycle.settle(cycle.date)  # the first lease paid 10 € itself: its share is 10 € less, the other's is whole
    assert cycle.owed() == {lease_id: Decimal("0.00") for lease_id in cycle.lease_ids}


def test_the_due_notice_states_date_amount_rum_and_ics(app, client_for, cycle):
    client = client_for("locataire@example.org")
    with app.app_context():
        document_id = db.session.scalar(sa.select(Document.id).where(
            Document.lease_id == cycle.lease_ids[0], Document.kind == DocumentKind.DUE_NOTICE,
            Document.period == cycle.period))
    before = client.get(f"/documents/{document_id}")  # downloaded before the debit was announced
    assert b"%PDF" in before.data[:8]
    cycle.prenotify()
    collection = cycle.collection()
    pdf = client.get(f"/documents/{document_id}").data  # rendered again, with the debit
    content = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    amount = f"{collection.notified_amount:.2f}".replace(".", ",")
    assert amount in content and collection.mandate.reference in content and "FR72ZZZ123456" in content
    assert f"{collection.collection_date.day} " in content and "pré-notification" in content


# --- rejects and returns -------------------------------------------------------------------------------------------

def test_a_reject_before_the_date_cancels_the_debit_without_touching_the_ledger(app, cycle, mailbox):
    cycle.prenotify()
    cycle.build()
    owed = cycle.owed()
    with app.app_context():
        collection = db.session.get(DirectDebitCollection, cycle.collection().id)
        assert direct_debits.record_reject(collection, "AM04", date.today(), date.today(), utcnow()) == "rejected"
    cycle.settle(cycle.date)  # a rejected debit is never credited
    assert cycle.collection().status is CollectionStatus.REJECTED
    assert cycle.credits() == [] and cycle.owed() == owed
    with app.app_context():
        assert db.session.get(Household, cycle.demo["locataire"]).payment_incident is True
    mailbox.deliver()
    assert "n'a pas pu être effectué" in mailbox.last_to("locataire@example.org")["Subject"]


def test_a_return_after_settlement_reverses_the_credit_and_withdraws_the_quittance(app, client_for, cycle):
    cycle.prenotify()
    cycle.build()
    cycle.settle(cycle.date)
    client = client_for("locataire@example.org")
    lease_id = cycle.lease_ids[0]
    quittance = client.get(f"/documents/recu/{lease_id}/{cycle.period}")
    assert quittance.status_code == 200 and "quittance" in quittance.headers["Content-Disposition"]
    with app.app_context():
        stored = db.session.scalar(sa.select(Document).where(Document.lease_id == lease_id,
                                                             Document.kind == DocumentKind.RECEIPT,
                                                             Document.period == cycle.period))
        assert stored is not None
        key = documents.stored_key(stored)
        collection = db.session.get(DirectDebitCollection, cycle.collection().id)
        on = max(date.today(), cycle.date)
        assert direct_debits.record_reject(collection, "MD06", on, on, utcnow()) == "returned"
        assert db.session.scalar(sa.select(Document).where(Document.id == stored.id)) is None
        rejects = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.kind == EntryKind.REJECT,
                                                                  LedgerEntry.lease_id.in_(cycle.lease_ids))).all()
        assert {r.reverses_id for r in rejects} == {c.id for c in cycle.credits()}
    with app.app_context():
        assert not filestore.exists(key)
    assert cycle.owed() != {lease: Decimal("0.00") for lease in cycle.lease_ids}
    with app.test_request_context():
        month = documents.period_label(cycle.period)
    assert f"Quittance {month}" not in text(client.get("/documents/"))
    again = client.get(f"/documents/recu/{lease_id}/{cycle.period}")
    assert again.status_code == 404 and "ni quittance ni reçu" in text(again)


@pytest.mark.parametrize("shift, message", [(1, "dans le futur"), (-40, "antérieure à l'envoi")])
def test_a_reject_dated_in_the_future_or_before_the_file_is_refused(app, client_for, cycle, shift, message):
    cycle.prenotify()
    cycle.build()
    staff = client_for("gestionnaire@example.org")
    url = f"/agence/mandats/prelevement/{cycle.collection().id}/rejet"
    response = staff.post(url, data={"csrf_token": csrf_token(staff, url), "reason": "AM04",
                                     "rejected_on": (date.today() + timedelta(days=shift)).isoformat()})
    assert response.status_code == 400 and message in text(response)
    assert cycle.collection().status is CollectionStatus.SUBMITTED


@pytest.mark.parametrize("typed", ["XXXX", "AM04X", "AM0", "A M 0 4 5", "<b>"])
def test_a_reject_code_that_is_not_the_rulebook_s_is_refused_not_cut(app, cycle, typed):
    cycle.prenotify()
    cycle.build()
    with app.app_context():
        collection = db.session.get(DirectDebitCollection, cycle.collection().id)
        with pytest.raises(SepaError, match="n'est pas un code motif de rejet SEPA") as refused:
            direct_debits.record_reject(collection, typed, date.today(), date.today(), utcnow())
        assert refused.value.field == "reason"
    assert cycle.collection().status is CollectionStatus.SUBMITTED


def test_a_reject_code_typed_in_lower_case_or_spaced_is_read(app, cycle):
    cycle.prenotify()
    cycle.build()
    with app.app_context():
        collection = db.session.get(DirectDebitCollection, cycle.collection().id)
        assert direct_debits.record_reject(collection, " md 06 ", date.today(), date.today(), utcnow()) == "rejected"
    assert cycle.collection().reject_reason == "MD06"


def test_a_reject_of_a_debit_never_sent_is_refused(app, cycle):
    cycle.prenotify()
    with app.app_context():
        collection = db.session.get(DirectDebitCollection, cycle.collection().id)
        with pytest.raises(SepaError, match="n'a pas été envoyé"):
            direct_debits.record_reject(collection, "AM04", date.today(), date.today(), utcnow())


# --- staff: the file from the back office ------------------------------------------------------------------------

def test_staff_preview_then_build_then_download_the_file(app, client_for, cycle):
    cycle.prenotify()
    staff = client_for("gestionnaire@example.org")
    url = f"/agence/prelevements/fichier?period={cycle.period}&day={cycle.day}"
    preview = text(staff.get(url))
    collection = cycle.collection()
    with app.app_context():
        expected = direct_debits.preview(cycle.period, cycle.day, date.today())
    assert expected.count >= 1 and f"Préparer le fichier ({expected.count} prélèvements" in preview
    token = csrf_token(staff, url)
    built = staff.post("/agence/prelevements/fichier", data={"csrf_token": token, "period": cycle.period,
                                                             "day": str(cycle.day)})
    assert built.status_code == 302
    page = text(staff.get(built.location))
    assert "Fichier préparé" in page and "Télécharger le fichier pain.008" in page
    again = staff.post("/agence/prelevements/fichier", data={"csrf_token": token, "period": cycle.period,
                                                             "day": str(cycle.day)})
    assert "est déjà préparé" in text(staff.get(again.location))
    with app.app_context():
        batch = db.session.scalar(sa.select(DirectDebitBatch))
        assert db.session.scalar(sa.select(sa.func.count(DirectDebitBatch.id))) == 1
        assert batch.created_by_id is not None
    download = staff.get(f"/agence/mandats/lot/{batch.id}/fichier")
    assert download.status_code == 200 and batch.message_id.encode() in download.data
    assert collection.end_to_end_id.encode() in download.data


def test_a_tenant_cannot_build_a_file(app, client_for, cycle):
    cycle.prenotify()
    tenant = client_for("locataire@example.org")
    response = tenant.post("/agence/prelevements/fichier", data={
        "csrf_token": csrf_token(tenant, "/paiement/"), "period": cycle.period, "day": str(cycle.day)})
    assert response.status_code in (302, 403, 404)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(DirectDebitBatch.id))) == 0


# --- the bank's answers --------------------------------------------------------------------------------------------

def upload(staff, data: bytes, name: str = "retour.xml"):
    url = "/agence/prelevements/retours"
    return staff.post(url, data={"csrf_token": csrf_token(staff, url), "file": (io.BytesIO(data), name)},
                      content_type="multipart/form-data")


def test_a_pain002_rejects_our_debit_and_lists_the_unknown_one(app, client_for, cycle, mailbox):
    cycle.prenotify()
    batch = cycle.build()
    collection = cycle.collection()
    owed = cycle.owed()
    staff = client_for("gestionnaire@example.org")
    data = bank_files.pain002_reject("P002-TEST-1", batch.message_id, collection.end_to_end_id, collection.amount,
                                     utcnow().replace(tzinfo=None))
    response = upload(staff, data)
    assert response.status_code == 302
    report = text(staff.get(response.location))
    assert "1 rejets appliqués, 1 lignes à vérifier" in report
    assert "Rejet appliqué" in report and "Prélèvement inconnu" in report and "EL202612B04E17C6A955" in report
    rejected = cycle.collection()
    assert rejected.status is CollectionStatus.REJECTED and rejected.reject_reason == "AM04"
    cycle.settle(cycle.date)
    assert cycle.credits() == [] and cycle.owed() == owed  # never credited, nothing to reverse
    again = upload(staff, data)
    assert again.status_code == 400 and "déjà été importé" in text(again)
    mailbox.deliver()
    assert len([m for m in mailbox.to("locataire@example.org") if "n'a pas pu" in m["Subject"]]) == 1


def test_a_camt054_return_after_settlement_reverses_the_credits(app, client_for, cycle):
    cycle.prenotify()
    batch = cycle.build()
    cycle.settle(cycle.date)
    collection = cycle.collection()
    staff = client_for("gestionnaire@example.org")
    on = max(date.today(), cycle.date)
    with app.app_context():
        record = direct_debits.import_bank_answer(
            bank_files.camt054_return("C054-TEST-1", batch.message_id, collection.end_to_end_id, collection.amount,
                                      on), "camt.xml", on, utcnow())
        assert record.applied == 1 and [line["result"] for line in record.report].count("returned") == 1
    assert cycle.collection().status is CollectionStatus.REJECTED
    assert cycle.collection().reject_reason == "MD06"
    assert sum(cycle.owed().values()) == collection.amount
    assert "Retours de la banque" in text(staff.get("/staffbankfileimportview/list/"))


@pytest.mark.parametrize("name, message", [
    ("not-xml.txt", "n'est pas un fichier XML valide"),
    ("pain.001-wrong-message.xml", "n'est pas un retour de la banque pris en charge"),
    ("pain.002-with-doctype.xml", "DOCTYPE"),
])
def test_a_file_that_is_not_a_bank_answer_is_refused_with_a_message(app, client_for, cycle, name, message):
    staff = client_for("gestionnaire@example.org")
    response = upload(staff, bank_files.sample(name), name)
    assert response.status_code == 400 and 'id="file-error"' in response.get_data(as_text=True)
    assert message in text(response)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(BankFileImport.id))) == 0


def test_an_answer_for_another_creditor_applies_nothing(app, client_for, cycle):
    cycle.prenotify()
    batch = cycle.build()
    collection = cycle.collection()
    data = bank_files.pain002_reject("P002-TEST-2", batch.message_id, collection.end_to_end_id, collection.amount,
                                     utcnow().replace(tzinfo=None), creditor_id="FR44ZZZ654321")
    response = upload(client_for("gestionnaire@example.org"), data)
    assert response.status_code == 400 and "autre créancier" in text(response)
    assert cycle.collection().status is CollectionStatus.SUBMITTED


def test_a_reject_for_an_unknown_debit_is_listed_and_changes_nothing(app, cycle):
    with app.app_context():
        record = direct_debits.import_bank_answer(
            bank_files.pain002_reject("P002-TEST-3", "EL-UNKNOWN", "EL202612FFFFFFFFFFFF", Decimal("12.00"),
                                      utcnow().replace(tzinfo=None)), "x.xml", date.today(), utcnow())
        assert record.applied == 0 and record.to_review == 2
        assert db.session.scalar(sa.select(sa.func.count(LedgerEntry.id)).where(
            LedgerEntry.kind == EntryKind.REJECT)) == 0


def test_the_same_file_imported_twice_at_the_same_time_is_applied_once(app, cycle):
    cycle.prenotify()
    batch = cycle.build()
    collection = cycle.collection()
    data = bank_files.pain002_reject("P002-TEST-4", batch.message_id, collection.end_to_end_id, collection.amount,
                                     utcnow().replace(tzinfo=None))
    outcomes, start = [], threading.Barrier(2)

    def run():
        with app.app_context():
            start.wait()
            try:
                outcomes.append(direct_debits.import_bank_answer(data, "x.xml", date.today(), utcnow()).applied)
            except SepaError as error:
                outcomes.append(error.message)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(map(str, outcomes)) == sorted(["1", "Ce fichier a déjà été importé : rien n'a été appliqué une "
                                                      "seconde fois."])
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(BankFileImport.id))) == 1
        assert db.session.scalar(sa.select(sa.func.count(OutgoingMail.id)).where(
            OutgoingMail.subject.contains("n'a pas pu"))) == 1


def test_a_whole_file_refused_by_the_bank_rejects_no_tenant_and_can_be_built_again(app, cycle):
    cycle.prenotify()
    batch = cycle.build()
    with app.app_context():
        record = direct_debits.import_bank_answer(
            bank_files.pain002_file_rejected("P002-TEST-5", batch.message_id, utcnow()), "x.xml", date.today(),
            utcnow())
        assert record.applied == 0 and record.to_review == 1 and "FF01" in record.report[0]["message"]
        assert db.session.get(Household, cycle.demo["locataire"]).payment_incident is False
    assert cycle.collection().status is CollectionStatus.NOTIFIED
    again = cycle.build()
    assert again.id != batch.id and cycle.collection().batch.id == again.id
