"""Browser journeys in real Chromium: a tenant files a technical request with a photo, staff answer in the back
office, the tenant reads the answer and adds information; the tenant sends an insurance certificate and staff
validate it."""

import pytest

from tests.browser import serious_violations, serve_demo, staff_page
from tests.samples import pdf_bytes, png_bytes, write
from tests.test_browser_tenant import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-requests"), 4) as served:
        yield served


@pytest.fixture
def photo(tmp_path):
    return write(tmp_path / "fuite.png", png_bytes())


@pytest.fixture
def certificate_pdf(tmp_path):
    return write(tmp_path / "attestation-maif.pdf", pdf_bytes())


def test_request_with_photo_answered_by_staff_then_completed_by_tenant(live, photo):
    _, server, browser = live
    tenant = sign_in(browser, server, "locataire@example.org", width=360)
    tenant.goto(f"{server.url}/demandes/")
    tenant.get_by_role("link", name="Faire une nouvelle demande").click()
    assert serious_violations(tenant) == []
    tenant.get_by_label("Type de demande").select_option("PLUMBING")
    tenant.get_by_label("Objet").fill("Fuite sous l'évier")
    tenant.get_by_label("Description").fill("L'eau coule sous l'évier depuis hier soir.")
    tenant.get_by_label("Quand êtes-vous joignable ?").fill("En semaine après 17 h")
    tenant.get_by_label("Photos ou documents").set_input_files(str(photo))
    tenant.get_by_role("button", name="Envoyer ma demande").click()
    tenant.wait_for_selector("text=est envoyée à votre agence")
    number = tenant.locator("h1").inner_text().replace("Demande ", "").strip()
    assert "fuite.png" in tenant.locator("main").inner_text()
    assert serious_violations(tenant) == []

    staff = staff_page(browser, server)
    staff.goto(f"{server.url}/staffrequestview/list/?_flt_0_number={number}")
    staff.locator("a[href*='/staffrequestview/show/']").first.click()
    staff.wait_for_url("**/agence/demandes/**")
    assert "fuite.png" in staff.locator("main").inner_text()
    staff.get_by_label("Message", exact=True).fill("Un plombier passera jeudi entre 8 h et 12 h.")
    staff.get_by_role("button", name="Envoyer").click()
    staff.wait_for_selector("text=Réponse envoyée au locataire")
    staff.get_by_label("Nouveau statut").select_option("WAITING_TENANT")
    staff.get_by_role("button", name="Changer le statut").click()
    staff.wait_for_selector("text=Statut changé")

    tenant.reload()
    assert "Un plombier passera jeudi" in tenant.locator("main").inner_text()
    assert "En attente de votre réponse" in tenant.locator("main").inner_text()
    tenant.get_by_label("Votre message").fill("Jeudi me convient, je serai présente.")
    tenant.get_by_role("button", name="Envoyer", exact=True).click()
    tenant.wait_for_selector("text=Votre complément d'information est envoyé")
    assert "Jeudi me convient" in tenant.locator("main").inner_text()
    staff.reload()
    assert "Jeudi me convient" in staff.locator("main").inner_text()
    tenant.close()
    staff.close()


def test_insurance_certificate_sent_by_tenant_and_validated_by_staff(live, certificate_pdf):
    _, server, browser = live
    tenant = sign_in(browser, server, "locataire@example.org")
    tenant.goto(f"{server.url}/contrat/")
    tenant.get_by_role("link", name="Envoyer ou renouveler mon attestation").click()
    assert serious_violations(tenant) == []
    tenant.get_by_label("Assureur").fill("MAIF")
    tenant.get_by_label("Numéro de contrat d'assurance").fill("HAB-778899")
    tenant.get_by_label("Valable du").fill("2026-11-01")
    tenant.get_by_label("Valable jusqu'au").fill("2027-10-31")
    tenant.get_by_label("Attestation (PDF)").set_input_files(str(certificate_pdf))
    tenant.get_by_role("button", name="Envoyer mon attestation").click()
    tenant.wait_for_selector("text=Votre agence la vérifie sous 48 heures")
    assert "en cours de vérification" in tenant.locator("main").inner_text()

    staff = staff_page(browser, server)
    staff.goto(f"{server.url}/staffinsurancequeueview/list/")
    staff.locator("a[href*='/staffinsurancequeueview/show/']").last.click()
    staff.wait_for_url("**/agence/assurances/**")
    assert "HAB-778899" in staff.locator("main").inner_text()
    staff.get_by_role("combobox", name="Décision").select_option("VALIDATED")
    staff.get_by_role("button", name="Enregistrer la décision").click()
    staff.wait_for_selector("text=Décision enregistrée")

    tenant.reload()
    assert "Attestation valide jusqu'au 31 octobre 2027 (MAIF)" in tenant.locator("main").inner_text()
    tenant.close()
    staff.close()
