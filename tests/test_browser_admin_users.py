"""Browser journeys of an administrator on Flask-AppBuilder's user forms (/users/add, /users/edit/<id>): the role
picker (select2, set up by FAB's ab.js and made accessible by app/static/js/fab-csp.js) is named by its label, is
driven by keyboard and mouse, and the forms pass axe-core, picker closed and open. Chromium, real CSP."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app import roles
from app.extensions import db
from app.models import User
from tests.browser import serious_violations, serve_demo, staff_page

pytestmark = pytest.mark.browser
ADMIN = "admin@example.org"
NEW = "nadia.roux@example.org"
NEW_PASSWORD = "Quittance-Verte-2026!"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-admin-users"), 3) as served:
        application = served[0]
        with application.app_context():
            admin = db.session.scalar(sa.select(User).where(User.email == ADMIN))
            application.config["journey"] = {"admin": admin.id}
        yield served


def role_names(application, email: str) -> set[str]:
    with application.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        return {role.name for role in user.roles}


def role_picker(page):
    """The search box of the role picker, found by its label as a screen reader user would."""
    return page.get_by_role("searchbox", name="Rôle", exact=True)


def open_picker(page):
    page.locator("#roles + .select2 .select2-search__field").click()
    page.locator("#select2-roles-results").wait_for()


@pytest.mark.parametrize("form", ["add", "edit"])
def test_the_user_forms_pass_axe_picker_closed_and_open(live, form):
    application, server, browser = live
    page = staff_page(browser, server, ADMIN)
    pk = application.config["journey"]["admin"]
    page.goto(f"{server.url}/users/add" if form == "add" else f"{server.url}/users/edit/{pk}")
    assert serious_violations(page) == []  # the edit form shows the admin's role: an empty placeholder
    open_picker(page)
    assert serious_violations(page) == []
    combobox = page.locator("#roles + .select2 .select2-selection[role=combobox]")
    assert combobox.get_attribute("aria-controls") == "select2-roles-results"
    page.keyboard.press("Escape")  # closes the list
    assert combobox.get_attribute("aria-expanded") == "false"
    assert combobox.get_attribute("aria-controls") is None
    page.keyboard.press("Escape")  # and keeps it closed
    assert combobox.get_attribute("aria-expanded") == "false"
    open_picker(page)
    page.get_by_role("option", name="Staff", exact=True).click()
    assert combobox.get_attribute("aria-expanded") == "false"
    assert serious_violations(page) == []  # one role more, the placeholder gone
    page.close()


@pytest.mark.parametrize("form", ["add", "edit"])
def test_the_pickers_are_named_by_their_labels(live, form):
    application, server, browser = live
    page = staff_page(browser, server, ADMIN)
    pk = application.config["journey"]["admin"]
    page.goto(f"{server.url}/users/add" if form == "add" else f"{server.url}/users/edit/{pk}")
    assert role_picker(page).count() == 1
    assert page.get_by_role("searchbox", name="Groupes", exact=True).count() == 1
    page.locator("label[for=roles]").click()  # the label still leads to the picker
    assert role_picker(page).evaluate("element => element === document.activeElement")
    page.close()


def test_an_administrator_adds_a_staff_user_then_changes_their_role(live):
    application, server, browser = live
    page = staff_page(browser, server, ADMIN)
    page.get_by_role("link", name="Sécurité").click()
    page.get_by_role("link", name="Listez les utilisateurs").click()
    page.wait_for_url("**/users/list/**")
    page.get_by_role("link", name="Ajouter").click()  # its icon font adds a character to the name
    page.wait_for_url("**/users/add")
    page.get_by_label("Prénom").fill("Nadia")
    page.get_by_label("Nom de famille").fill("Roux")
    page.get_by_label("Nom d'utilisateur").fill(NEW)
    page.get_by_label("Email").fill(NEW)
    picker = role_picker(page)
    picker.focus()  # by keyboard: type, the first match is highlighted, Enter chooses it
    picker.press_sequentially("staff")
    page.get_by_role("option", name="StaffLandlord", exact=True).wait_for()
    picker.press("Enter")
    assert page.locator(".select2-selection__choice").all_inner_texts() == ["×Staff"]
    page.get_by_role("textbox", name=re.compile(r"^Mot de passe")).fill(NEW_PASSWORD)
    page.get_by_role("textbox", name=re.compile(r"^Confirmez votre mot de passe")).fill(NEW_PASSWORD)
    assert serious_violations(page) == []
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url("**/users/list/**")
    assert NEW in page.locator("table.table-bordered").inner_text()
    assert role_names(application, NEW) == {roles.STAFF}

    page.locator("tr", has_text=NEW).get_by_role("link", name="Modifier").click()
    page.wait_for_url("**/users/edit/**")
    assert page.locator(".select2-selection__choice").all_inner_texts() == ["×Staff"]
    assert serious_violations(page) == []
    open_picker(page)  # by mouse: another role, then the first one taken off
    page.get_by_role("option", name="StaffLandlord", exact=True).click()
    page.locator(".select2-selection__choice[title='Staff'] .select2-selection__choice__remove").click()
    assert page.locator(".select2-selection__choice").all_inner_texts() == ["×StaffLandlord"]
    assert serious_violations(page) == []
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url("**/users/list/**")
    assert role_names(application, NEW) == {roles.STAFF_LANDLORD}
    page.close()
