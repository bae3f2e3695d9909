"""Browser journey in real Chromium: retard@example.org pays what is overdue through the sandbox gateway (which
speaks the bank's signed protocol and notifies the portal server to server), sees the balance go to zero and
downloads the payment receipt."""

import io
import re

import pytest
from pypdf import PdfReader

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
