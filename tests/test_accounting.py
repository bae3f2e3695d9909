"""The accounting export (issue 10, point 7): every card payment, card reversal, settled direct debit and reject of a
date range, with the references the accountants match against the bank, in a stable CSV."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.formatting import spreadsheet_text
from app.models import (
    DirectDebitCollection, DirectDebitMandate, EntryKind, Household, Lease, LedgerEntry, PaymentTransaction, utcnow,
)
from app.payments import systempay
from app.services import accounting, direct_debits, ledger, payments, rent_calls

HEADER = ["date", "numero_client", "contrat", "nature", "sens", "montant", "reference", "reference_banque", "rum",
          "ecriture", "libelle"]
URL = "/agence/export-comptable/"


def at(day: date) -> datetime:
    return datetime.combine(day, time(10), tzinfo=timezone.utc)


def parse(text: str) -> list[dict]:
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=";"))
    assert lines[0] == HEADER
    return [dict(zip(HEADER, line)) for line in lines[1:]]


def export(app, start: date, end: date) -> tuple[str, list[dict]]:
    with app.app_context():
        stream = io.StringIO(newline="")
        count = accounting.write_csv(stream, start, end)
    text = stream.getvalue()
    rows = parse(text)
    assert count == len(rows)
    return text, rows


def bank_says(transaction: PaymentTransaction, now: datetime, **overrides) -> str:
    """The bank's signed notification about `transaction` (a captured payment unless overridden); its uuid."""
    from flask import current_app

    fields = {"vads_amount": systempay.cents(transaction.amount), "vads_ctx_mode": transaction.ctx_mode,
              "vads_currency": "978", "vads_order_id": transaction.order_id,
              "vads_site_id": current_app.config["SYSTEMPAY_SITE_ID"], "vads_trans_id": transaction.trans_id,
              "vads_trans_uuid": uuid.uuid4().hex, "vads_trans_status": "CAPTURED", "vads_result": "00",
              "vads_url_check_src": "PAY", "vads_operation_type": "DEBIT", **overrides}
    answer = payments.handle_notification(systempay.signed(fields, current_app.config["SYSTEMPAY_KEY_TEST"]), now)
    assert answer == ("OK", 200)
    return fields["vads_trans_uuid"]


def pay_by_card(household_id: int, lease_id: int | None, amount: Decimal, now: datetime) -> PaymentTransaction:
    """A card payment through the real code path: started, then the bank's signed notification."""
    transaction = payments.start_payment(db.session.get(Household, household_id), lease_id, str(amount), now)
    bank_says(transaction, now)
    return db.session.get(PaymentTransaction, transaction.id)


@pytest.fixture
def trail(app, demo):
    """Next month: locataire@example.org's direct debit of its dwelling and parking is settled on C, then returned
    (AM04) on C+3; retard@example.org pays one lease by card on C+1, cancelled on C+2; locataire@example.org pays
    both leases by card on C+4 (one payment split in two credits)."""
    month = rent_calls.next_period(date.today())
    period = f"{month:%Y-%m}"
    with app.app_context():
        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["locataire"]))
        rent_calls.call_rents(month, utcnow())
        direct_debits.prenotify(month - timedelta(days=20), utcnow())
        batch = direct_debits.build_file(period, mandate.debit_day, month - timedelta(days=10), utcnow())
        day = batch.collection_date
        direct_debits.settle(day, at(day))
        collection = db.session.scalar(sa.select(DirectDebitCollection).where(
            DirectDebitCollection.mandate_id == mandate.id, DirectDebitCollection.period == period))
        dd_credits = sorted(share.credit_entry_id for share in collection.shares)
        assert len(dd_credits) == 2

        card = pay_by_card(demo["retard"], demo["retard_lease"], Decimal("123.45"), at(day + timedelta(days=1)))
        card_credit = db.session.scalar(sa.select(LedgerEntry).where(
            LedgerEntry.external_ref == f"systempay:{card.trans_uuid}"))
        reversal = ledger.reverse(card_credit, EntryKind.CARD_REVERSAL, "-Annulation du paiement par carte",
                                  day + timedelta(days=2), at(day + timedelta(days=2)),
                                  f"reversal:{card.trans_uuid}")
        db.session.commit()

        assert direct_debits.record_reject(collection, "AM04", day + timedelta(days=3), day + timedelta(days=3),
                                           at(day + timedelta(days=3))) == "returned"
        rejects = sorted(db.session.scalars(sa.select(LedgerEntry.id).where(
            LedgerEntry.kind == EntryKind.REJECT, LedgerEntry.reverses_id.in_(dd_credits))))

        owed = ledger.lease_balances([lease.id for lease in mandate.leases])
        split = pay_by_card(demo["locataire"], None, sum(owed.values()), at(day + timedelta(days=4)))
        split_credits = sorted(db.session.scalars(sa.select(LedgerEntry.id).where(
            LedgerEntry.external_ref.like(f"systempay:{split.trans_uuid}:%"))))
        assert len(split_credits) == 2
        return {
            "day": day, "period": period, "rum": mandate.reference, "message_id": batch.message_id,
            "end_to_end_id": collection.end_to_end_id, "dd_credits": dd_credits, "rejects": rejects,
            "card": {"order_id": card.order_id, "uuid": card.trans_uuid, "credit": card_credit.id,
                     "reversal": reversal.id},
            "split": {"order_id": split.order_id, "uuid": split.trans_uuid, "credits": split_credits},
            "locataire": db.session.get(Household, demo["locataire"]).client_number,
            "retard": db.session.get(Household, demo["retard"]).client_number,
            "retard_lease": db.session.get(Lease, demo["retard_lease"]).number,
        }


def by_entry(rows: list[dict]) -> dict[int, dict]:
    return {int(row["ecriture"]): row for row in rows}


def test_every_movement_appears_with_its_references(app, trail):
    day = trail["day"]
    _, rows = export(app, day, day + timedelta(days=4))
    lines = by_entry(rows)

    card = lines[trail["card"]["credit"]]
    assert card == {"date": (day + timedelta(days=1)).isoformat(), "numero_client": trail["retard"],
                    "contrat": f"L/{trail['retard_lease']}", "nature": "PAIEMENT_CARTE", "sens": "CREDIT",
                    "montant": "123.45", "reference": trail["card"]["order_id"],
                    "reference_banque": trail["card"]["uuid"], "rum": "", "ecriture": str(trail["card"]["credit"]),
                    "libelle": f"Paiement par carte {trail['card']['order_id']}"}
    reversal = lines[trail["card"]["reversal"]]
    assert (reversal["date"], reversal["nature"], reversal["sens"], reversal["montant"]) == (
        (day + timedelta(days=2)).isoformat(), "ANNULATION_CARTE", "DEBIT", "123.45")
    assert (reversal["reference"], reversal["reference_banque"], reversal["rum"]) == (
        trail["card"]["order_id"], trail["card"]["uuid"], "")

    with app.app_context():
        amounts = {entry.id: entry for entry in db.session.scalars(sa.select(LedgerEntry).where(
            LedgerEntry.id.in_(trail["dd_credits"] + trail["rejects"] + trail["split"]["credits"])))}
        contracts = {entry_id: f"L/{entry.lease.number}" for entry_id, entry in amounts.items()}
    for entry_id in trail["dd_credits"]:
        line = lines[entry_id]
        assert (line["date"], line["numero_client"], line["nature"], line["sens"]) == (
            day.isoformat(), trail["locataire"], "PRELEVEMENT", "CREDIT")
        assert (line["reference"], line["reference_banque"], line["rum"]) == (
            trail["end_to_end_id"], trail["message_id"], trail["rum"])
        assert line["montant"] == f"{amounts[entry_id].amount:.2f}" and line["contrat"] == contracts[entry_id]
    assert len({lines[entry_id]["contrat"] for entry_id in trail["dd_credits"]}) == 2  # two leases, one debit
    for entry_id in trail["rejects"]:
        line = lines[entry_id]
        cancelled = amounts[entry_id].reverses_id
        assert (line["date"], line["nature"], line["sens"]) == (
            (day + timedelta(days=3)).isoformat(), "REJET_PRELEVEMENT", "DEBIT")
        assert (line["reference"], line["reference_banque"], line["rum"]) == (
            trail["end_to_end_id"], trail["message_id"], trail["rum"])
        assert line["montant"] == lines[cancelled]["montant"] and line["contrat"] == lines[cancelled]["contrat"]
        assert "AM04" in line["libelle"]
    for entry_id in trail["split"]["credits"]:  # "systempay:<uuid>:<lease id>"
        line = lines[entry_id]
        assert (line["nature"], line["reference"], line["reference_banque"]) == (
            "PAIEMENT_CARTE", trail["split"]["order_id"], trail["split"]["uuid"])
        assert line["contrat"] == contracts[entry_id]

    ours = {trail["card"]["credit"], trail["card"]["reversal"], *trail["dd_credits"], *trail["rejects"],
            *trail["split"]["credits"]}
    assert ours <= set(lines)
    # Nothing else: no due notice, no housing benefit; other households' debits of the same file are fine.
    assert {row["nature"] for row in rows} <= {"PAIEMENT_CARTE", "ANNULATION_CARTE", "PRELEVEMENT",
                                                "REJET_PRELEVEMENT"}
    assert [(row["date"], int(row["ecriture"])) for row in rows] == sorted(
        (row["date"], int(row["ecriture"])) for row in rows)
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"]) and re.fullmatch(r"\d{8}", row["numero_client"])
        assert re.fullmatch(r"L/\d{6}", row["contrat"]) and re.fullmatch(r"\d+\.\d{2}", row["montant"])
        assert row["sens"] == ("CREDIT" if row["nature"] in ("PAIEMENT_CARTE", "PRELEVEMENT") else "DEBIT")


def test_a_refund_by_the_bank_carries_the_refund_operation(app, demo):
    """A partial refund reverses the whole credit and credits again the part kept (app.services.payments): the
    reversal quotes the refund's uuid, the part kept the payment's."""
    day = rent_calls.next_period(date.today()) + timedelta(days=14)
    with app.app_context():
        card = pay_by_card(demo["retard"], demo["retard_lease"], Decimal("200.00"), at(day))
        refund_uuid = bank_says(card, at(day + timedelta(days=1)), vads_operation_type="CREDIT", vads_amount="5000",
                                vads_url_check_src="MERCH_BO")
        order_id, payment_uuid = card.order_id, card.trans_uuid
    _, rows = export(app, day, day + timedelta(days=1))
    lines = [(row["date"], row["nature"], row["sens"], row["montant"], row["reference"], row["reference_banque"])
             for row in rows]
    assert lines == [
        (day.isoformat(), "PAIEMENT_CARTE", "CREDIT", "200.00", order_id, payment_uuid),
        ((day + timedelta(days=1)).isoformat(), "ANNULATION_CARTE", "DEBIT", "200.00", order_id, refund_uuid),
        ((day + timedelta(days=1)).isoformat(), "PAIEMENT_CARTE", "CREDIT", "150.00", order_id, payment_uuid),
    ]


def test_the_file_format(app, trail):
    text, rows = export(app, trail["day"], trail["day"] + timedelta(days=4))
    assert text.startswith("\ufeffdate;numero_client;contrat;nature;sens;montant;reference;reference_banque;rum;"
                           "ecriture;libelle\r\n")
    assert text.count("\r\n") == len(rows) + 1 and "\n" not in text.replace("\r\n", "")
    reversal = trail["card"]["reversal"]
    line = next(line for line in text.split("\r\n") if f";{reversal};" in line)
    assert line.endswith(f";{reversal};'-Annulation du paiement par carte")


def test_the_range_is_inclusive_and_excludes_the_rest(app, trail):
    day = trail["day"]
    _, rows = export(app, day + timedelta(days=1), day + timedelta(days=3))
    lines = by_entry(rows)
    assert {trail["card"]["credit"], trail["card"]["reversal"], *trail["rejects"]} <= set(lines)
    assert not set(lines) & {*trail["dd_credits"], *trail["split"]["credits"]}
    assert all(day + timedelta(days=1) <= date.fromisoformat(row["date"]) <= day + timedelta(days=3) for row in rows)
    _, first_day = export(app, day, day)
    assert set(trail["dd_credits"]) <= set(by_entry(first_day))
    assert {row["date"] for row in first_day} == {day.isoformat()}
    _, nothing = export(app, day + timedelta(days=5), day + timedelta(days=30))
    assert nothing == []


def test_formula_like_cells_are_neutralised(app, trail):
    with app.app_context():
        entry = db.session.get(LedgerEntry, trail["split"]["credits"][0])
        entry.label = '=HYPERLINK("http://example.org","x")'
        db.session.commit()
    _, rows = export(app, trail["day"], trail["day"] + timedelta(days=4))
    lines = by_entry(rows)
    assert lines[trail["split"]["credits"][0]]["libelle"] == '\'=HYPERLINK("http://example.org","x")'
    assert lines[trail["card"]["reversal"]]["libelle"] == "'-Annulation du paiement par carte"
    assert all(re.fullmatch(r"\d+\.\d{2}", row["montant"]) for row in rows)  # amounts are never touched


@pytest.mark.parametrize("cell, expected", [
    ("=1+1", "'=1+1"), ("+33 6", "'+33 6"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("Prélèvement", "Prélèvement"), ("351.12", "351.12"), ("", ""),
])
def test_neutralise(cell, expected):
    assert spreadsheet_text(cell) == expected


def test_demo_payments_are_exported_with_empty_references(app, demo):
    today = date.today()
    _, rows = export(app, today - timedelta(days=365), today)
    with app.app_context():
        demo_ids = set(db.session.scalars(sa.select(LedgerEntry.id).where(
            LedgerEntry.kind.in_((EntryKind.CARD_PAYMENT, EntryKind.DIRECT_DEBIT)),
            LedgerEntry.external_ref.like("demo-%"), LedgerEntry.entry_date >= today - timedelta(days=365),
            LedgerEntry.entry_date <= today)))
    assert demo_ids and set(by_entry(rows)) == demo_ids
    assert {row["nature"] for row in rows} == {"PAIEMENT_CARTE", "PRELEVEMENT"}
    assert all(row["reference"] == row["reference_banque"] == row["rum"] == "" for row in rows)


@pytest.mark.parametrize("start, end, message", [
    ("2026-11-31", "2026-11-30", "Date invalide"),
    ("2026-11-01", "30-11-2026", "Date invalide"),
    ("", "2026-11-30", "Indiquez la date de début."),
    ("2026-12-01", "2026-11-30", "La date de début doit être antérieure ou égale à la date de fin."),
    ("2026-01-01", "2027-01-02", "La période ne peut pas dépasser 366 jours."),
])
def test_bad_ranges_are_refused(app, start, end, message):
    with app.app_context():
        with pytest.raises(accounting.AccountingError, match=re.escape(message)):
            accounting.parse_range(start, end)


def test_a_leap_year_and_french_dates_are_accepted(app):
    with app.app_context():
        assert accounting.parse_range("2028-01-01", "2028-12-31") == (date(2028, 1, 1), date(2028, 12, 31))
        assert accounting.parse_range("01/11/2026", "30/11/2026") == (date(2026, 11, 1), date(2026, 11, 30))


# --- the command ---------------------------------------------------------------------------------------------------

def test_command_writes_the_file_or_stdout(app, trail, tmp_path):
    start, end = trail["day"], trail["day"] + timedelta(days=4)
    expected, rows = export(app, start, end)
    runner = app.test_cli_runner()
    target = tmp_path / "export.csv"
    result = runner.invoke(args=["export-accounting", "--from", start.isoformat(), "--to", end.isoformat(),
                                 "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == expected.encode("utf-8")
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert f"{len(rows)} movements" in result.stderr
    assert list(tmp_path.iterdir()) == [target]  # no partial file left beside it
    result = runner.invoke(args=["export-accounting", "--from", start.isoformat(), "--to", end.isoformat()])
    assert result.exit_code == 0
    assert result.stdout_bytes == expected.encode("utf-8")


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-11-01", "--to", "2026-11-31"], "Invalid value for --to: Date invalide"),
    (["--from", "2026-12-01", "--to", "2026-11-30"], "La date de début doit être antérieure ou égale"),
    (["--from", "2025-11-01", "--to", "2026-11-30"], "La période ne peut pas dépasser 366 jours."),
    (["--from", "2026-11-01"], "Missing option '--to'"),
])
def test_command_refuses_bad_dates(app, tmp_path, args, message):
    target = tmp_path / "export.csv"
    result = app.test_cli_runner().invoke(args=["export-accounting", *args, "--output", str(target)])
    assert result.exit_code != 0
    assert message in result.stderr
    assert not target.exists()


# --- the staff page ------------------------------------------------------------------------------------------------

def test_staff_download_the_csv(app, client_for, trail):
    start, end = trail["day"], trail["day"] + timedelta(days=4)
    expected, _ = export(app, start, end)
    client = client_for("gestionnaire@example.org")
    page = client.get(URL)
    assert page.status_code == 200
    assert 'name="du"' in page.get_data(as_text=True) and "Export comptable" in page.get_data(as_text=True)
    response = client.get(URL, query_string={"du": start.isoformat(), "au": end.isoformat()})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="export-comptable-{start.isoformat()}-{end.isoformat()}.csv"')
    assert "no-store" in response.headers["Cache-Control"]
    assert response.get_data() == expected.encode("utf-8")


def test_a_tenant_cannot_reach_the_export(client_for):
    client = client_for("locataire@example.org")
    for url in (URL, f"{URL}?du=2026-11-01&au=2026-11-30"):
        response = client.get(url)
        assert response.status_code in (403, 404), response.status_code
        assert "text/csv" not in response.headers.get("Content-Type", "")


@pytest.mark.parametrize("query, field, message", [
    ({"du": "2026-11-31", "au": "2026-11-30"}, "du",
     "Date invalide : saisissez-la au format AAAA-MM-JJ, par exemple 2026-11-30."),
    ({"du": "2026-11-01", "au": ""}, "au", "Indiquez la date de fin."),
    ({"du": "2026-12-01", "au": "2026-11-30"}, "du",
     "La date de début doit être antérieure ou égale à la date de fin."),
    ({"du": "2026-01-01", "au": "2027-06-30"}, "au", "La période ne peut pas dépasser 366 jours."),
])
def test_bad_dates_on_the_page_are_explained_next_to_the_field(client_for, query, field, message):
    response = client_for("gestionnaire@example.org").get(URL, query_string=query)
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert re.search(rf'id="{field}-error">[^<]*{re.escape(message)}', page), page[-3000:]
    assert response.headers["Content-Type"].startswith("text/html")
