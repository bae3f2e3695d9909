"""Browser journey in real Chromium: retard@example.org (who has no mandate) subscribes to direct debit, checks the
review step and downloads the SEPA mandate to sign."""

import io

import pytest
from pypdf import PdfReader

from tests.browser import serious_violations, serve_demo
from tests.samples import pdf_bytes, write
from tests.test_browser_tenant import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-sepa"), 4) as served:
        yield served


@pytest.fixture
def rib(tmp_path):
    return write(tmp_path / "rib.pdf", pdf_bytes())


def test_subscribe_and_download_the_mandate(live, rib):
    _, server, browser = live
    page = sign_in(browser, server, "retard@example.org", width=360)
    page.goto(f"{server.url}/paiement/")
    page.get_by_role("link", name="Souscrire au prélèvement automatique").click()
    assert serious_violations(page) == []
    page.get_by_label("IBAN", exact=True).fill("fr76 3000 4008 1900 0123 4567 879")
    page.get_by_label("Jour du prélèvement").select_option("7")
    page.get_by_label("Votre RIB (PDF ou photo)").set_input_files(str(rib))
    page.get_by_label("J'autorise le prélèvement").check()
    page.get_by_role("button", name="Vérifier mes informations").click()
    page.wait_for_selector("text=Vérifiez votre demande de prélèvement")
    review = page.locator("main").inner_text()
    assert "FR76 **** **** 879" in review and "le 7 de chaque mois" in review
    assert "3000 4008 1900" not in review
    page.get_by_role("button", name="Valider ma demande").click()
    page.wait_for_selector("text=est prêt")
    assert "En attente du mandat signé" in page.locator("main").inner_text()
    page.get_by_role("link", name="Mes documents").first.click()
    with page.expect_download() as info:
        page.get_by_role("link", name="Mandat de prélèvement SEPA").first.click()
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(open(info.value.path(), "rb").read()))
                             .pages).split())
    assert "Mandat de prélèvement SEPA" in text and "Identifiant créancier SEPA" in text and "Récurrent" in text
    page.close()
