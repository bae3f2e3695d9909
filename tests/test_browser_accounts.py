"""Browser journey in real Chromium: a household without an account registers, opens the activation link from the
outbox, logs in, changes its password and logs out. Account pages pass axe-core at 360 px."""

import email
import email.policy
import re
import time

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Household
from app.services.demo import client_number
from tests.browser import serious_violations, serve_demo
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
FIRST_PASSWORD = "Tr0mpette-99!"
SECOND_PASSWORD = "Clarinette-2027?"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-accounts"), 5) as served:
        yield served


def wait_for_mail(outbox, recipient, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in sorted(outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == recipient:
                return message
        time.sleep(0.2)
    raise AssertionError(f"no mail to {recipient} in {outbox}")


def test_register_activate_login_change_password_logout(live):
    application, server, browser = live
    with application.app_context():
        household = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(3)))
        number, surname = household.client_number, household.signatory_last_name
    page = browser.new_page(viewport={"width": 360, "height": 740})
    page.goto(f"{server.url}/login/")
    page.get_by_role("link", name="Créer mon espace").click()
    page.get_by_label("Numéro client").fill(number)
    page.get_by_label("Nom du signataire du bail").fill(surname.lower())
    page.get_by_label("Adresse e-mail").fill("navigateur@example.net")
    page.get_by_label("Mot de passe", exact=True).fill(FIRST_PASSWORD)
    assert page.locator("#password-rules li.rule-ok").count() == 4  # the live check agrees
    page.get_by_label("Confirmation du mot de passe").fill(FIRST_PASSWORD)
    page.get_by_label("J'accepte les conditions d'utilisation").check()
    page.get_by_role("button", name="Créer mon espace").click()
    page.wait_for_selector("text=Vérifiez votre messagerie")

    message = wait_for_mail(application.config["MAIL_OUTBOX_DIR"], "navigateur@example.net")
    text = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(re.escape(server.url) + r"/compte/activer/\S+", text).group(0)
    page.goto(link)
    page.wait_for_selector("text=Votre espace est activé")

    page.get_by_label("Identifiant (adresse e-mail)").fill("navigateur@example.net")
    page.get_by_label("Mot de passe").fill(FIRST_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_selector("text=Votre compte")
    page.get_by_role("link", name="Informations personnelles").first.click()
    section = page.get_by_role("region", name="Changer de mot de passe")
    section.get_by_label("Mot de passe actuel").fill(FIRST_PASSWORD)
    section.get_by_label("Nouveau mot de passe", exact=True).fill(SECOND_PASSWORD)
    section.get_by_label("Confirmation du nouveau mot de passe").fill(SECOND_PASSWORD)
    section.get_by_role("button", name="Changer de mot de passe").click()
    page.wait_for_selector("text=Votre mot de passe est changé")
    assert serious_violations(page) == []

    page.locator(".navbar-toggle").click()  # 360 px: the menu opens first
    page.get_by_role("button", name="Se déconnecter").click()  # a POST form in the menu, with its CSRF token
    page.wait_for_selector("text=Vous êtes déconnecté")
    page.goto(f"{server.url}/mon-compte/")
    assert "/login/" in page.url
    page.get_by_label("Identifiant (adresse e-mail)").fill("navigateur@example.net")
    page.get_by_label("Mot de passe").fill(SECOND_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_selector("text=Votre compte")
    page.close()


@pytest.mark.parametrize("path", ["/compte/creer", "/compte/mot-de-passe-oublie", "/compte/identifiant-oublie",
                                  "/compte/renvoyer", "/compte/conditions"])
def test_account_pages_are_accessible_on_a_phone(live, path):
    _, server, browser = live
    page = browser.new_page(viewport={"width": 360, "height": 740})
    page.goto(server.url + path)
    assert serious_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.close()


def test_tenant_profile_is_accessible_and_keyboard_reachable(live):
    _, server, browser = live
    page = browser.new_page(viewport={"width": 360, "height": 740})
    page.goto(f"{server.url}/login/")
    page.get_by_label("Identifiant (adresse e-mail)").fill("locataire@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Votre compte")
    page.goto(f"{server.url}/mon-compte/")
    assert serious_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Aller au contenu"
    page.close()
