"""Browser journey in real Chromium: retard@example.org pays what is overdue through the sandbox gateway (which
speaks the bank's signed protocol and notifies the portal server to server), sees the balance go to zero and
downloads the payment receipt; a household with a dwelling and a parking chooses what it pays."""

import io
import re
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.extensions import db
from app.models import Direction, EntryKind, Household, LedgerEntry
from app.services import ledger
from app.services.demo import client_number
from tests.browser import serious_violations, serve_demo
from tests.test_browser_tenant import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-payment"), 4) as served:
        yield served


def test_pay_the_overdue_amount_by_card(live):
    _, server, browser = live
    page = sign_in(browser, server, "retard@example.org", width=360)
    owed = re.search(r"Un montant de ([\d\u202f\u00a0 ]+,\d\d\u00a0€)", page.locator("main").inner_text()).group(1)
    page.get_by_role("link", name="Payer en ligne").click()
    page.wait_for_url("**/paiement/")
    amount_field = page.get_by_label("Montant à payer (€)")
    assert amount_field.input_value().replace(",", "") == re.sub(r"[^\d]", "", owed)
    assert serious_violations(page) == []
    page.get_by_role("button", name="Payer en ligne").click()
    page.wait_for_selector("text=Paiement sécurisé")  # the bank's page (sandbox)
    assert "Bac à sable" in page.locator("body").inner_text()
    page.get_by_role("button", name=re.compile("carte de test acceptée")).click()
    page.wait_for_selector("text=Paiement confirmé par la banque")
    assert "Votre compte est maintenant débiteur de 0,00" in page.locator("main").inner_text()
    page.get_by_role("link", name="Retour à la page Paiement").click()
    assert "Votre compte est débiteur de 0,00" in page.locator("main").inner_text()
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("^Reçu de paiement")).first.click()
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(open(info.value.path(), "rb").read()))
                             .pages).split())
    assert "Reçu de paiement par carte bancaire" in text
    assert " ".join(owed.split()) in text
    page.goto(f"{server.url}/")
    assert "en retard de paiement" not in page.locator("main").inner_text()
    page.close()


def test_a_refused_card_changes_nothing(live):
    _, server, browser = live
    page = sign_in(browser, server, "locataire@example.org")
    page.goto(f"{server.url}/paiement/")
    before = page.locator("#balance-title + p").inner_text()
    page.get_by_label("Montant à payer (€)").fill("25,00")
    page.get_by_role("button", name="Payer en ligne").click()
    page.get_by_role("button", name=re.compile("carte de test refusée")).click()
    page.wait_for_selector("text=Le paiement n'a pas abouti")
    page.goto(f"{server.url}/paiement/")
    assert page.locator("#balance-title + p").inner_text() == before
    page.close()


def test_choosing_the_parking_proposes_what_it_owes(live):
    """locataire@example.org rents a dwelling and a parking: choosing the parking in the pay form proposes what the
    parking owes and shows its own maximum (pay-amount.js), and the server agrees when the form is sent."""
    application, server, browser = live
    with application.app_context():
        household = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(0)))
        leases = {lease.unit.kind.name: lease for lease in household.leases}
        dwelling, parking = leases["DWELLING"], leases["PARKING"]
        for lease, amount in ((dwelling, "40.00"), (parking, "12.34")):
            db.session.add(LedgerEntry(household_id=household.id, lease_id=lease.id, kind=EntryKind.REGULARISATION,
                                       direction=Direction.DEBIT, amount=Decimal(amount), label="Régularisation",
                                       entry_date=date.today()))
        db.session.commit()
        owed = {key: ledger.lease_balance(lease.id) for key, lease in leases.items()}
        parking_label = f"{parking.unit.kind.label} {parking.display_number}"
        parking_maximum = owed["PARKING"] + parking.rent + parking.charges - parking.housing_benefit
    page = sign_in(browser, server, "locataire@example.org", width=360)
    page.goto(f"{server.url}/paiement/")
    amount_field, scope = page.get_by_label("Montant à payer (€)"), page.get_by_label("Contrat à régler")
    everything = euros(owed["DWELLING"] + owed["PARKING"])
    assert amount_field.input_value() == everything
    scope.select_option(label=parking_label)
    assert amount_field.input_value() == euros(owed["PARKING"]) == "12,34"
    assert page.locator("#pay-maximum").inner_text().replace("\u202f", " ").replace("\u00a0", " ") == \
        f"{euros(parking_maximum)} €"
    assert serious_violations(page) == []
    scope.select_option(label="Tous mes contrats")
    assert amount_field.input_value() == everything
    scope.select_option(label=parking_label)
    amount_field.fill(euros(parking_maximum + Decimal("0.01")))
    page.get_by_role("button", name="Payer en ligne").click()
    assert "Vous pouvez payer au plus" in page.locator("#amount-error").inner_text()
    assert scope.input_value() == str(parking.id)
    assert euros(parking_maximum) in page.locator("#pay-maximum").inner_text()
    page.close()


def euros(amount: Decimal) -> str:
    return f"{amount:.2f}".replace(".", ",")
