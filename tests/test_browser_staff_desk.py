"""Browser journeys of a chargée de clientèle of one agency (issue 12): the work queues on her home page, the one
search box (client number, lease number, a name typed without its accents, e-mail, phone, street), the household
page, and another agency's household answered by a 404 page of the portal. Chromium, real CSP, axe-core."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Agency, Household
from app.services.demo import client_number
from tests.browser import serious_violations, serve_demo, staff_page

pytestmark = pytest.mark.browser
AGENT = "agence@example.org"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-desk"), 30) as served:
        application = served[0]
        with application.app_context():
            household = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(5)))
            household.signatory_first_name, household.signatory_last_name = "Gérard", "Lefèvre"
            household.phone, household.email = "06 11 22 33 44", "gerard.lefevre@exemple.fr"
            tours = db.session.scalar(sa.select(Agency).where(Agency.code == "AG-TRS"))
            far = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(6)))
            far.agency_id = tours.id
            db.session.commit()
            served[0].config["journey"] = {
                "gerard": household.id, "client": household.client_number, "lease": household.leases[0].number,
                "street": household.leases[0].unit.street, "far": far.id, "far_client": far.client_number}
        yield served


def search(page, text: str) -> None:
    box = page.get_by_role("searchbox", name="Rechercher un foyer : numéro client, contrat, nom, e-mail, téléphone ou rue")
    box.fill(text)
    box.press("Enter")
    page.wait_for_load_state("load")


def test_the_agency_s_day_starts_from_its_queues(live):
    _, server, browser = live
    page = staff_page(browser, server, AGENT)
    assert page.locator("h1").inner_text() == "Files de travail"
    rows = page.locator("table.queue-table tbody tr")
    assert rows.count() == 5
    headers = page.locator("table.queue-table thead th").all_inner_texts()
    assert "Agence d'Orléans" in headers and "Agence de Tours" not in headers  # her agency only
    assert serious_violations(page) == []
    page.get_by_role("link", name="Attestations d'assurance à valider").click()
    page.wait_for_url("**/staffinsurancequeueview/list/**")
    page.close()


@pytest.mark.parametrize("kind", ["accented name typed plainly", "client number", "lease number", "lease digits",
                                  "phone", "e-mail"])
def test_one_box_finds_the_household(live, kind):
    application, server, browser = live
    journey = application.config["journey"]
    typed = {"accented name typed plainly": "gerard lefevre", "client number": journey["client"],
             "lease number": f"L/{journey['lease']}", "lease digits": journey["lease"], "phone": "0611223344",
             "e-mail": "GERARD.LEFEVRE@exemple.fr"}[kind]
    page = staff_page(browser, server, AGENT)
    search(page, typed)
    page.wait_for_url(f"**/agence/foyers/{journey['gerard']}**")
    assert "Lefèvre" in page.locator("body").inner_text()
    page.close()


def test_a_street_gives_a_short_list_then_the_household(live):
    application, server, browser = live
    journey = application.config["journey"]
    page = staff_page(browser, server, AGENT)
    search(page, journey["street"].lower())
    assert "foyers correspondent" in page.locator("[role=status]").inner_text()
    assert serious_violations(page) == []
    page.get_by_role("link", name=journey["client"]).click()
    page.wait_for_url(f"**/agence/foyers/{journey['gerard']}**")
    page.close()


def test_a_query_too_short_is_answered_next_to_the_box(live):
    _, server, browser = live
    page = staff_page(browser, server, AGENT)
    search(page, "%")
    assert "Tapez au moins 2 lettres ou chiffres." in page.locator(".field-error").inner_text()
    assert page.locator("#search-page-q").get_attribute("aria-invalid") == "true"
    page.close()


def test_another_agency_s_household_is_a_404_page_of_the_portal(live):
    application, server, browser = live
    journey = application.config["journey"]
    page = staff_page(browser, server, AGENT)
    response = page.goto(f"{server.url}/agence/foyers/{journey['far']}")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page introuvable"
    page.get_by_role("link", name="Retour à l'accueil").click()
    page.wait_for_url("**/agence/")
    search(page, journey["far_client"])
    assert "Aucun foyer ne correspond" in page.locator("[role=status]").inner_text()
    page.close()


def test_a_staff_edit_shows_in_the_household_history(live):
    application, server, browser = live
    journey = application.config["journey"]
    page = staff_page(browser, server, AGENT)
    page.goto(f"{server.url}/staffhouseholdview/edit/{journey['gerard']}")
    page.get_by_role("textbox", name="Téléphone", exact=True).fill("02 38 11 22 33")
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_load_state("load")
    page.goto(f"{server.url}/agence/foyers/{journey['gerard']}")
    page.get_by_role("link", name="Historique", exact=True).click()
    history = page.locator("#history")
    history.get_by_text("02 38 11 22 33").wait_for()
    assert "Claire Conseillère" in history.inner_text()
    assert serious_violations(page) == []
    page.close()


def test_an_administrator_attaches_a_chargee_de_clientele_to_another_agency(live):
    """After the 404 test: once attached to Tours too, Claire sees that household."""
    application, server, browser = live
    journey = application.config["journey"]
    admin = staff_page(browser, server, "admin@example.org")
    admin.get_by_role("link", name="Sécurité").click()
    admin.get_by_role("link", name="Agents des agences").click()
    admin.wait_for_url("**/agencystaffview/list/**")
    admin.goto(f"{server.url}/agencystaffview/add")
    admin.get_by_label("Agent (adresse de connexion)").fill(AGENT)
    admin.locator("select[name=agency]").select_option(label="Agence de Tours")
    admin.get_by_role("button", name="Enregistrer").click()
    admin.wait_for_url("**/agencystaffview/list/**")
    assert "Agence de Tours" in admin.locator("table.table-bordered").inner_text()
    admin.close()
    page = staff_page(browser, server, AGENT)
    assert page.goto(f"{server.url}/agence/foyers/{journey['far']}").status == 200
    page.close()


def test_a_staff_member_turns_on_the_second_factor_then_signs_in_with_a_code(live):
    """Last of the module: it leaves gestionnaire@example.org with a second factor."""
    from datetime import timedelta

    import pyotp

    from app.models import utcnow
    from tests.conftest import PASSWORD

    _, server, browser = live
    page = staff_page(browser, server)
    page.locator("nav .dropdown-toggle").last.click()
    page.get_by_role("link", name="Double authentification").click()
    page.get_by_role("button", name="Activer la double authentification").click()
    page.wait_for_selector(".totp-qr svg")  # the QR code, inline SVG under the CSP
    secret = page.locator(".totp-secret").inner_text()
    assert serious_violations(page) == []
    page.get_by_label("Code à 6 chiffres").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Activer", exact=True).click()
    page.wait_for_selector("text=La double authentification est active")
    page.locator("nav .dropdown-toggle").last.click()
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_selector("text=Vous êtes déconnecté")
    page.get_by_label("Identifiant (adresse e-mail)").fill("gestionnaire@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/login/code")
    assert serious_violations(page) == []
    page.get_by_label("Code à 6 chiffres").fill(pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30)))
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/agence/")
    page.close()
