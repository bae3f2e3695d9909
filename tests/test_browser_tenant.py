"""Browser journeys in real Chromium through every tenant section, with axe-core on each page, at 360 px and on a
desktop; a receipt is downloaded and its text checked with a PDF text extractor."""

import io
import re

import pytest
from pypdf import PdfReader

from tests.browser import serious_violations, serve_demo
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
SECTIONS = [("Informations personnelles", "/mon-compte/"), ("Contrat", "/contrat/"), ("Documents", "/documents/"),
            ("Paiement", "/paiement/"), ("Demandes", "/demandes/"), ("Accueil", "/")]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-tenant"), 6) as served:
        yield served


def sign_in(browser, server, email, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900}, accept_downloads=True)
    page.goto(f"{server.url}/login/")
    page.get_by_label("Identifiant (adresse e-mail)").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_selector("text=Votre compte")
    return page


def test_every_section_by_the_menu_with_axe(live):
    _, server, browser = live
    page = sign_in(browser, server, "locataire@example.org")
    assert serious_violations(page) == []
    for label, path in SECTIONS:
        page.get_by_role("navigation", name="Menu de l'espace locataire").get_by_role("link", name=label,
                                                                                       exact=True).click()
        page.wait_for_url(f"**{path}")
        assert page.locator("h1").count() == 1
        assert serious_violations(page) == [], path
    page.close()


@pytest.mark.parametrize("path", ["/", "/mon-compte/", "/contrat/", "/documents/", "/paiement/", "/demandes/",
                                  "/contrat/occupant/arrivee", "/contrat/occupant/depart", "/mon-compte/fermer",
                                  "/demandes/nouvelle", "/contrat/assurance"])
def test_tenant_pages_on_a_360px_phone(live, path):
    _, server, browser = live
    page = sign_in(browser, server, "retard@example.org", width=360)
    page.goto(server.url + path)
    assert serious_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
    page.close()


def test_menu_opens_by_keyboard_on_a_phone(live):
    _, server, browser = live
    page = sign_in(browser, server, "locataire@example.org", width=360)
    toggle = page.get_by_role("button", name="Ouvrir le menu")
    toggle.focus()
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name="Documents", exact=True)
    link.wait_for(state="visible")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/documents/")
    page.close()


def test_download_a_receipt_and_read_it(live):
    _, server, browser = live
    page = sign_in(browser, server, "locataire@example.org")
    page.get_by_role("link", name="Documents", exact=True).first.click()
    receipt = page.get_by_role("link", name=re.compile(r"^Quittance ")).first
    title = receipt.inner_text()
    with page.expect_download() as info:
        receipt.click()
    download = info.value
    assert download.suggested_filename.startswith("quittance-") and download.suggested_filename.endswith(".pdf")
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(open(download.path(), "rb").read()))
                             .pages).split())
    month = re.sub(r"\s*-\s*PDF$", "", title).replace("Quittance ", "").strip()
    assert f"Quittance de loyer - {month}" in text
    assert "Loyer" in text and "Provisions sur charges" in text and "Paiements du locataire" in text
    assert re.search(r"\d+,\d\d €", text)
    page.close()


def test_tenant_in_arrears_sees_the_alert_everywhere_it_matters(live):
    _, server, browser = live
    page = sign_in(browser, server, "retard@example.org")
    alert = page.get_by_role("alert").filter(has_text="en retard de paiement")
    assert alert.count() == 1
    page.get_by_role("link", name="Paiement", exact=True).first.click()
    assert "en retard de paiement" in page.locator("main").inner_text()
    page.get_by_role("link", name="Documents", exact=True).first.click()
    page.get_by_role("button", name="Télécharger mon attestation").click()
    page.wait_for_selector("text=Document non disponible")
    assert "retard de paiement" in page.locator("main").inner_text()
    page.close()
