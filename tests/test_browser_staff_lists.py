"""Browser tests: Flask-AppBuilder's staff lists under the portal's real Content-Security-Policy (nonce-only
scripts). The search widget adds filters, actions ask for confirmation in an accessible dialog and run, a cancelled
dialog changes nothing, and list and show pages pass axe-core."""

import re

import pytest
import sqlalchemy as sa
from flask_appbuilder.security.sqla.models import User
from playwright.sync_api import expect

from app import roles
from app.extensions import db
from app.models import Household, OutgoingMail, TenantAccount
from app.services.demo import client_number
from tests.browser import serious_violations, serve_demo, staff_page

pytestmark = pytest.mark.browser

CSP = "Content Security Policy"
# Flask-AppBuilder's French catalogue says « Ajouter un filter »; ours says « Ajouter un filtre ».
ADD_FILTER = re.compile(r"^Ajouter un filt")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-lists"), 30) as served:
        yield served


class Watched:
    """A staff page whose CSP reports and script errors are collected."""

    def __init__(self, live):
        _, server, browser = live
        self.url = server.url
        self.page = staff_page(browser, server)
        self.csp: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", lambda message: CSP in message.text and self.csp.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def goto(self, path: str):
        self.page.goto(self.url + path)
        return self.page

    def clean(self) -> bool:
        return self.csp == [] and self.errors == []


@pytest.fixture
def staff(live):
    watched = Watched(live)
    yield watched
    watched.page.close()


def _account_id(application, email: str) -> int:
    with application.app_context():
        return db.session.scalar(sa.select(TenantAccount.id).join(User, User.id == TenantAccount.user_id)
                                 .where(User.email == email))


def _user_active(application, email: str) -> bool:
    with application.app_context():
        return db.session.scalar(sa.select(User.active).where(User.email == email))


def _pending_account(application, index: int) -> tuple[int, str]:
    """A registration never activated, for the household `index`: (account id, e-mail)."""
    with application.app_context():
        household = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(index)))
        email = f"attente{index}@example.org"
        user = User(first_name=household.signatory_first_name, last_name=household.signatory_last_name,
                    username=email, email=email, active=False, password="!",
                    roles=[application.appbuilder.sm.find_role(roles.TENANT)])
        db.session.add(user)
        db.session.flush()
        account = TenantAccount(user_id=user.id, household_id=household.id)
        db.session.add(account)
        db.session.commit()
        return account.id, email


def _mails_to(application, email: str) -> int:
    with application.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(OutgoingMail)
                                 .where(OutgoingMail.recipient == email))


def _list_rows(page):
    return page.locator("table.table-bordered > tbody > tr")


def _control(page, name: str):
    """A button, or a link that acts like one (Flask-AppBuilder's markup)."""
    return page.get_by_role("button", name=name).or_(page.get_by_role("link", name=name))


def _check_row(page, text: str):
    page.locator("table.table-bordered > tbody > tr", has_text=text).get_by_role("checkbox").check()


def _open_action_menu_and_choose(page, action_text: str):
    page.get_by_role("button", name="Actions").click()
    _control(page, action_text).click()


def test_staff_filters_a_list_from_the_search_widget(live, staff):
    application, _, _ = live
    with application.app_context():
        name = db.session.scalar(sa.select(Household.signatory_last_name)
                                 .where(Household.client_number == client_number(4)))
        expected = db.session.scalar(sa.select(sa.func.count()).select_from(Household)
                                     .where(Household.signatory_last_name.startswith(name)))
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Household))
    assert 0 < expected < min(total, 25)
    page = staff.goto("/staffhouseholdview/list/")
    assert _list_rows(page).count() == min(total, 25)

    page.get_by_role("link", name="Rechercher").click()
    page.get_by_role("button", name=ADD_FILTER).click()
    page.locator("#filter_form .dropdown-menu").get_by_role("link", name="Nom du signataire",
                                                             exact=True).click()
    value = page.get_by_role("textbox", name="Nom du signataire")
    expect(value).to_be_focused()  # the keyboard lands where the value is typed
    value.fill(name)
    page.locator("#filter_form").get_by_role("button", name="Rechercher").click()
    page.wait_for_url(re.compile(r"_flt_0_signatory_last_name="))

    assert _list_rows(page).count() == expected
    assert all(name in row for row in _list_rows(page).all_inner_texts())
    # The active filter is shown again, ready to change or remove.
    page.get_by_role("link", name="Rechercher").click()
    expect(page.get_by_role("textbox", name="Nom du signataire")).to_have_value(name)
    assert staff.csp == [], staff.csp
    assert staff.errors == [], staff.errors


def test_staff_resends_an_activation_email_after_confirming(live, staff):
    application, _, _ = live
    account_id, email = _pending_account(application, 7)
    before = _mails_to(application, email)
    page = staff.goto(f"/stafftenantaccountview/show/{account_id}")
    _control(page, "Renvoyer l'e-mail d'activation").click()

    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Renvoyer l'e-mail d'activation à ces comptes ?")
    dialog.get_by_role("button", name="Confirmer").click()

    expect(page.get_by_role("status")).to_contain_text("E-mail d'activation renvoyé à 1 compte(s) en attente.")
    assert _mails_to(application, email) == before + 1
    assert staff.clean(), (staff.csp, staff.errors)


def test_staff_disables_accounts_from_the_list_with_the_keyboard(live, staff):
    application, _, _ = live
    email = "retard@example.org"
    assert _user_active(application, email)
    page = staff.goto("/stafftenantaccountview/list/")
    _check_row(page, client_number(1))
    _open_action_menu_and_choose(page, "Désactiver le compte")

    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Désactiver ces comptes ? Leurs sessions seront fermées.")
    # Focus is inside the dialog, on the harmless choice; Tab reaches the confirmation.
    expect(dialog.get_by_role("button", name="Annuler")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Confirmer")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_contain_text("1 compte(s) désactivé(s).")
    assert not _user_active(application, email)
    assert staff.clean(), (staff.csp, staff.errors)


def test_cancelled_confirmation_changes_nothing(live, staff):
    application, _, _ = live
    email = "locataire@example.org"
    account_id = _account_id(application, email)
    page = staff.goto("/stafftenantaccountview/list/")
    url = page.url
    _check_row(page, client_number(0))
    _open_action_menu_and_choose(page, "Désactiver le compte")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Annuler")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Actions")).to_be_focused()  # back where the staff member was

    page = staff.goto(f"/stafftenantaccountview/show/{account_id}")
    _control(page, "Désactiver le compte").click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Annuler").click()
    expect(dialog).to_be_hidden()
    expect(_control(page, "Désactiver le compte")).to_be_focused()

    page.wait_for_timeout(300)  # a form sent by mistake would have navigated by now
    assert page.url.endswith(f"/stafftenantaccountview/show/{account_id}")
    assert page.locator(".alert").count() == 0
    assert _user_active(application, email)
    assert url.endswith("/stafftenantaccountview/list/")
    assert staff.clean(), (staff.csp, staff.errors)


def test_lists_show_pages_and_dialogs_have_no_serious_accessibility_violation(live, staff):
    application, _, _ = live
    with application.app_context():
        household_id = db.session.scalar(sa.select(Household.id).where(Household.client_number == client_number(0)))
    account_id = _account_id(application, "locataire@example.org")

    page = staff.goto("/stafftenantaccountview/list/")  # row checkboxes and the actions menu
    page.get_by_role("link", name="Rechercher").click()
    page.get_by_role("button", name=ADD_FILTER).click()
    page.locator("#filter_form .dropdown-menu").get_by_role("link", name="Numéro client",
                                                             exact=True).click()
    assert serious_violations(page) == []

    page = staff.goto(f"/agence/foyers/{household_id}")  # the household page, its forms folded
    assert serious_violations(page) == []

    page = staff.goto(f"/stafftenantaccountview/show/{account_id}")  # action buttons and their dialog
    assert serious_violations(page) == []
    _control(page, "Désactiver le compte").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.wait_for_timeout(400)  # the fade-in, so that colours are measured at their final opacity
    assert serious_violations(page) == []
    assert staff.clean(), (staff.csp, staff.errors)
