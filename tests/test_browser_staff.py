"""Browser tests: a staff member finds a household in real Chromium; the login page passes axe-core."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Household
from app.services.demo import client_number
from tests.browser import serious_violations, serve_demo
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser"), 30) as served:
        yield served


def test_login_page_has_no_serious_accessibility_violation(live):
    _, server, browser = live
    for width in (1280, 360):
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.goto(f"{server.url}/login/")
        assert page.locator("h1").inner_text() == "Connexion à votre espace"
        assert serious_violations(page) == []
        page.close()


def test_staff_logs_in_and_opens_a_household(live):
    application, server, browser = live
    with application.app_context():
        household = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(1)))
        wanted, name = household.client_number, household.signatory_last_name
    page = browser.new_page()
    page.goto(f"{server.url}/")
    page.get_by_label("Identifiant (adresse e-mail)").fill("gestionnaire@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/agence/")
    page.goto(f"{server.url}/staffhouseholdview/list/?_flt_0_client_number={wanted}")
    page.locator("a[href*='/staffhouseholdview/show/']").first.click()
    page.wait_for_url("**/agence/foyers/**")  # the household page
    body = page.locator("body").inner_text()
    assert wanted in body and name in body and "Solde" in body
    leases = page.locator("section", has=page.locator("#leases-title")).inner_text()
    assert "L/" in leases  # the household's leases are listed on its page
    page.close()


def test_staff_logs_out_from_the_menu(live):
    """Logout is a POST form in the user menu (a GET only shows the button): it works from the dropdown."""
    _, server, browser = live
    page = browser.new_page()
    page.goto(f"{server.url}/login/")
    page.get_by_label("Identifiant (adresse e-mail)").fill("gestionnaire@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/agence/")
    page.locator("nav .dropdown-toggle").last.click()
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_selector("text=Vous êtes déconnecté")
    page.goto(f"{server.url}/staffhouseholdview/list/")
    assert "/login/" in page.url
    page.close()



def test_opening_the_logout_address_asks_before_logging_out(live):
    """A GET of /logout/ (a bookmark, a link) shows the button; the person confirms with it."""
    _, server, browser = live
    page = browser.new_page()
    page.goto(f"{server.url}/login/")
    page.get_by_label("Identifiant (adresse e-mail)").fill("gestionnaire@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/agence/")
    page.goto(f"{server.url}/logout/")
    assert page.locator("h1").inner_text() == "Se déconnecter"
    assert serious_violations(page) == []
    page.locator("main .logout-confirm button").click()
    page.wait_for_selector("text=Vous êtes déconnecté")
    page.goto(f"{server.url}/agence/")
    assert "/login/" in page.url
    page.close()
