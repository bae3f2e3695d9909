"""Tenant accounts end to end over HTTP, with mail through a real SMTP server on loopback and CSRF on."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask_appbuilder.security.sqla.models import User

from app.extensions import db
from app.models import AccountToken, Household, Lease, TenantAccount, TokenPurpose, utcnow
from app.services import accounts
from tests.conftest import PASSWORD, csrf_token, login
from tests.mailbox import html_of, link_in, text_of

NEW_PASSWORD = "Tr0mpette-99!"
BASE = "http://127.0.0.1:8080"


@pytest.fixture
def newcomer(app, demo):
    """A demo household with no portal account yet."""
    with app.app_context():
        household = db.session.get(Household, demo["other"])
        return {"id": household.id, "client_number": household.client_number,
                "surname": household.signatory_last_name, "lease": household.leases[0].number}


def register(client, reference, surname, email="nouveau@example.net", password=NEW_PASSWORD, confirm=None,
             terms="y"):
    data = {"csrf_token": csrf_token(client, "/compte/creer"), "reference": reference, "surname": surname,
            "email": email, "password": password, "confirm": confirm if confirm is not None else password}
    if terms:
        data["terms"] = terms
    return client.post("/compte/creer", data=data)


def body(response) -> str:
    """The page's text with HTML entities decoded (apostrophes come escaped or not, depending on the source)."""
    return html.unescape(response.get_data(as_text=True))


def without_noise(html: str) -> str:
    """A page without its per-request CSRF token and CSP nonce, to compare two answers."""
    html = re.sub(r'value="[^"]{20,}"', "", html)
    return re.sub(r'nonce="[^"]+"', "", html)


def account_of(app, household_id):
    with app.app_context():
        account = db.session.scalar(sa.select(TenantAccount).where(TenantAccount.household_id == household_id))
        return (account.user.email, account.user.active, account.activated_at) if account else None


# --- registration and activation ----------------------------------------------------------------------------------

def test_register_activate_and_log_in(app, newcomer, mailbox):
    client = app.test_client()
    response = register(client, newcomer["client_number"], newcomer["surname"].upper())
    assert response.status_code == 200 and "nouveau@example.net" in body(response)
    assert account_of(app, newcomer["id"]) == ("nouveau@example.net", False, None)
    assert "Adresse e-mail ou mot de passe incorrect." in body(login(app.test_client(), "nouveau@example.net",
                                                                      NEW_PASSWORD))
    assert mailbox.deliver() == 1
    message = mailbox.last_to("nouveau@example.net")
    assert message["Subject"] == "Activez votre espace locataire"
    link = link_in(message, BASE)
    assert link.startswith("/compte/activer/") and link in html_of(message)
    response = client.get(link)
    assert response.status_code == 302 and response.location.endswith("/login/")
    email, active, activated_at = account_of(app, newcomer["id"])
    assert active and activated_at is not None
    response = login(app.test_client(), "nouveau@example.net", NEW_PASSWORD)
    assert response.status_code == 302 and response.location.endswith("/")


@pytest.mark.parametrize("reference_kind", ["lease_with_prefix", "lease_digits"])
def test_register_with_the_contract_reference_and_accented_surname(app, newcomer, reference_kind):
    reference = f"L/{newcomer['lease']}" if reference_kind == "lease_with_prefix" else newcomer["lease"]
    surname = newcomer["surname"].replace("e", "é").upper()
    register(app.test_client(), reference, f"  {surname} ")
    assert account_of(app, newcomer["id"]) is not None


def test_unknown_client_and_wrong_surname_get_the_same_answer(app, newcomer):
    unknown = register(app.test_client(), "99999999", newcomer["surname"])
    wrong_name = register(app.test_client(), newcomer["client_number"], "Quelquun", email="autre@example.net")
    assert unknown.status_code == wrong_name.status_code == 200
    assert "Ces informations ne correspondent à aucun contrat." in body(unknown)
    strip = lambda r: re.sub(r'name="(reference|surname|email)"[^>]*', "", without_noise(body(r)))  # noqa: E731
    assert strip(unknown) == strip(wrong_name)
    assert account_of(app, newcomer["id"]) is None


def test_second_registration_is_refused_without_revealing_the_address(app, demo):
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        number, surname = household.client_number, household.signatory_last_name
    response = register(app.test_client(), number, surname, email="intrus@example.net")
    page = body(response)  # the page answers as for a new registration (issue 11, finding 8); the mail tells
    assert "Vérifiez votre messagerie" in page and "existe déjà" not in page
    assert "locataire@example.org" not in page
    with app.app_context():
        assert db.session.scalar(sa.select(User).where(User.email == "intrus@example.net")) is None


@pytest.mark.parametrize("password, message", [
    ("court1!", "au moins 8 caractères"),
    ("Motdepasse!", "au moins 2 chiffres"),
    ("Soleil2024!", "trop courant"),
    ("Abcdef123", "caractère spécial"),
])
def test_weak_passwords_are_refused_next_to_the_field(app, newcomer, password, message):
    page = body(register(app.test_client(), newcomer["client_number"], newcomer["surname"], password=password))
    assert re.search(r'id="password-error">[^<]*' + re.escape(message), page), page[-3000:]
    assert account_of(app, newcomer["id"]) is None


def test_mismatch_missing_terms_and_bad_email_are_explained(app, newcomer):
    page = body(register(app.test_client(), newcomer["client_number"], newcomer["surname"], confirm="Autre-1234!"))
    assert "Les deux mots de passe ne sont pas identiques." in page
    page = body(register(app.test_client(), newcomer["client_number"], newcomer["surname"], terms=None))
    assert "Vous devez accepter les conditions d'utilisation." in page
    page = body(register(app.test_client(), newcomer["client_number"], newcomer["surname"], email="pas-une-adresse"))
    assert 'id="email-error"' in page
    assert account_of(app, newcomer["id"]) is None


def test_a_long_passphrase_is_accepted(app, newcomer):
    phrase = "le chat de la voisine dort sur le toit du garage tous les matins"
    assert len(phrase) >= 64
    register(app.test_client(), newcomer["client_number"], newcomer["surname"], password=phrase)
    assert account_of(app, newcomer["id"]) is not None


def _activation_link(app, newcomer, mailbox):
    register(app.test_client(), newcomer["client_number"], newcomer["surname"])
    mailbox.deliver()
    return link_in(mailbox.last_to("nouveau@example.net"), BASE)


def test_activation_link_expires_after_24_hours(app, newcomer, mailbox):
    link = _activation_link(app, newcomer, mailbox)
    with app.app_context():
        db.session.execute(sa.update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    response = app.test_client().get(link)
    assert response.status_code == 410
    assert "Ce lien a expiré" in body(response) and "/compte/renvoyer" in body(response)
    assert account_of(app, newcomer["id"])[1] is False


def test_activation_token_lifetime_is_24_hours(app, newcomer):
    register(app.test_client(), newcomer["client_number"], newcomer["surname"])
    with app.app_context():
        token = db.session.scalar(sa.select(AccountToken))
        assert token.purpose is TokenPurpose.ACTIVATION
        assert token.expires_at - token.created_at == timedelta(hours=24)


def test_activation_link_is_single_use_and_cannot_be_altered(app, newcomer, mailbox):
    link = _activation_link(app, newcomer, mailbox)
    altered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert app.test_client().get(altered).status_code == 404
    assert account_of(app, newcomer["id"])[1] is False
    assert app.test_client().get(link).status_code == 302
    assert app.test_client().get(link).status_code == 404


def test_resend_gives_a_new_link_and_kills_the_old_one(app, newcomer, mailbox):
    old = _activation_link(app, newcomer, mailbox)
    client = app.test_client()
    for address in ("nouveau@example.net", "inconnu@example.net"):
        response = client.post("/compte/renvoyer", data={"csrf_token": csrf_token(client, "/compte/renvoyer"),
                                                          "email": address})
        assert "Si un espace en attente d'activation correspond" in body(response)
    mailbox.deliver()
    assert len(mailbox.to("inconnu@example.net")) == 0
    new = link_in(mailbox.last_to("nouveau@example.net"), BASE)
    assert new != old
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 302


# --- login ------------------------------------------------------------------------------------------------------

def test_login_is_throttled_per_account_and_says_when_to_retry(app, demo):
    client = app.test_client()
    for _ in range(accounts.LOGIN_LIMIT):
        response = login(client, "retard@example.org", "mauvais-mot-de-passe")
    assert "Trop de tentatives de connexion. Réessayez après" in body(response)
    response = login(client, "retard@example.org", PASSWORD)
    assert response.status_code == 200 and "Réessayez après" in body(response)
    # an unknown account is locked the same way: the answer reveals nothing
    for _ in range(accounts.LOGIN_LIMIT):
        response = login(client, "personne@example.org", "mauvais-mot-de-passe")
    assert "Réessayez après" in body(response)
    # other accounts are not affected
    assert login(app.test_client(), "locataire@example.org", PASSWORD).status_code == 302


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil.example", "https://evil.example",
                                    "http:evil.example", "/\r\nLocation: https://evil.example",
                                    "/\\/evil.example"])
def test_login_never_redirects_off_the_portal(app, demo, target):
    client = app.test_client()
    token = csrf_token(client, "/login/")
    response = client.post("/login/", query_string={"next": target},
                           data={"username": "locataire@example.org", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert response.location in ("/", "http://localhost/"), response.location


def test_login_keeps_a_local_next(app, demo):
    client = app.test_client()
    token = csrf_token(client, "/login/")
    response = client.post("/login/?next=/mon-compte/", data={"username": "locataire@example.org",
                                                               "password": PASSWORD, "csrf_token": token})
    assert response.location.endswith("/mon-compte/")


def test_logout_really_logs_out(client_for):
    client = client_for("locataire@example.org")
    assert client.get("/mon-compte/").status_code == 200
    client.post("/logout/", data={"csrf_token": csrf_token(client, "/mon-compte/")})
    response = client.get("/mon-compte/")
    assert response.status_code == 302 and "/login/" in response.location


def test_session_cookie_is_permanent_with_an_idle_lifetime(app, demo):
    client = app.test_client()
    token = csrf_token(client, "/login/")
    response = client.post("/login/", data={"username": "locataire@example.org", "password": PASSWORD,
                                            "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert "Expires=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --- recovery -----------------------------------------------------------------------------------------------------

def test_forgotten_identifier_answers_the_same_and_mails_only_the_holder(app, demo, mailbox):
    with app.app_context():
        household = db.session.get(Household, demo["locataire"])
        number, surname = household.client_number, household.signatory_last_name
    client = app.test_client()
    answers = []
    for reference, name in ((number, surname), (number, "Autre"), ("12121212", surname)):
        response = client.post("/compte/identifiant-oublie", data={
            "csrf_token": csrf_token(client, "/compte/identifiant-oublie"), "reference": reference, "surname": name})
        answers.append(without_noise(body(response)))
    assert answers[0] == answers[1] == answers[2]
    mailbox.deliver()
    assert len(mailbox.messages) == 1
    assert "locataire@example.org" in text_of(mailbox.last_to("locataire@example.org"))


def _forgot(client, email):
    return client.post("/compte/mot-de-passe-oublie", data={
        "csrf_token": csrf_token(client, "/compte/mot-de-passe-oublie"), "email": email})


def test_password_reset_ends_other_sessions_and_notifies(app, client_for, mailbox):
    other_session = client_for("locataire@example.org")
    assert other_session.get("/mon-compte/").status_code == 200
    client = app.test_client()
    known, unknown = _forgot(client, "locataire@example.org"), _forgot(client, "nobody@example.org")
    assert without_noise(body(known)) == without_noise(body(unknown))
    mailbox.deliver()
    link = link_in(mailbox.last_to("locataire@example.org"), BASE)
    assert link.startswith("/compte/nouveau-mot-de-passe/")
    weak = client.post(link, data={"csrf_token": csrf_token(client, link), "password": "abc", "confirm": "abc"})
    assert weak.status_code == 200 and 'id="password-error"' in body(weak)
    response = client.post(link, data={"csrf_token": csrf_token(client, link), "password": NEW_PASSWORD,
                                       "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert client.get(link).status_code == 404  # single use
    ended = other_session.get("/mon-compte/")
    assert ended.status_code == 302 and "/login/" in ended.location
    mailbox.deliver()
    assert mailbox.last_to("locataire@example.org")["Subject"] == "Votre mot de passe a été changé"
    assert login(app.test_client(), "locataire@example.org", NEW_PASSWORD).status_code == 302


def test_password_reset_link_lasts_one_hour(app, demo, mailbox):
    _forgot(app.test_client(), "locataire@example.org")
    with app.app_context():
        token = db.session.scalar(sa.select(AccountToken).where(AccountToken.purpose == TokenPurpose.PASSWORD_RESET))
        assert token.expires_at - token.created_at == timedelta(hours=1)
        token.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    mailbox.deliver()
    link = link_in(mailbox.last_to("locataire@example.org"), BASE)
    assert app.test_client().get(link).status_code == 410


# --- profile ------------------------------------------------------------------------------------------------------

PREFIXES = {"/mon-compte/coordonnees": "contact-", "/mon-compte/mot-de-passe": "pw-", "/mon-compte/email": "mail-"}


def _profile_post(client, path, **data):
    """Post one of the profile page's forms (each has its own field prefix)."""
    prefix = PREFIXES.get(path, "")
    fields = {f"{prefix}{name}": value for name, value in data.items()}
    fields[f"{prefix}csrf_token"] = csrf_token(client, "/mon-compte/")
    return client.post(path, data=fields)


def test_change_password_needs_the_current_one_and_ends_other_sessions(app, client_for, mailbox):
    first, second = client_for("locataire@example.org"), client_for("locataire@example.org")
    wrong = _profile_post(first, "/mon-compte/mot-de-passe", current_password="nope", password=NEW_PASSWORD,
                          confirm=NEW_PASSWORD)
    assert wrong.status_code == 400 and "Le mot de passe actuel est incorrect." in body(wrong)
    done = _profile_post(first, "/mon-compte/mot-de-passe", current_password=PASSWORD, password=NEW_PASSWORD,
                         confirm=NEW_PASSWORD)
    assert done.status_code == 302
    assert first.get("/mon-compte/").status_code == 200  # this session stays
    assert second.get("/mon-compte/").status_code == 302  # the other one ended


def test_change_email_takes_effect_only_when_confirmed(app, client_for, mailbox):
    client = client_for("locataire@example.org")
    response = _profile_post(client, "/mon-compte/email", email="Lea.Nouvelle@Example.net", password=PASSWORD)
    assert response.status_code == 302
    mailbox.deliver()
    notice = mailbox.last_to("locataire@example.org")
    assert "lea.nouvelle@example.net" in text_of(notice)
    link = link_in(mailbox.last_to("lea.nouvelle@example.net"), BASE)
    assert login(app.test_client(), "lea.nouvelle@example.net", PASSWORD).status_code == 200  # not yet
    assert client.get(link).status_code == 302
    assert login(app.test_client(), "lea.nouvelle@example.net", PASSWORD).status_code == 302
    assert client.get(link).status_code == 404


def test_change_email_refuses_an_address_in_use_and_a_wrong_password(client_for):
    client = client_for("locataire@example.org")
    taken = _profile_post(client, "/mon-compte/email", email="retard@example.org", password=PASSWORD)
    assert "déjà utilisée" in body(taken)
    wrong = _profile_post(client, "/mon-compte/email", email="x@example.net", password="faux")
    assert "Le mot de passe est incorrect." in body(wrong)


def test_contact_details_are_saved_and_forged_fields_ignored(app, client_for, demo):
    client = client_for("locataire@example.org")
    bad = _profile_post(client, "/mon-compte/coordonnees", phone="12", professional_situation="RETIRED")
    assert bad.status_code == 400 and "numéro de téléphone valide" in body(bad)
    response = _profile_post(client, "/mon-compte/coordonnees", phone="0612345678",
                             professional_situation="RETIRED", paperless="y", household_id=str(demo["retard"]),
                             client_number="00000000", active="n", roles="Admin")
    assert response.status_code == 302
    with app.app_context():
        mine, theirs = db.session.get(Household, demo["locataire"]), db.session.get(Household, demo["retard"])
        assert mine.phone == "06 12 34 56 78" and mine.professional_situation.name == "RETIRED"
        assert mine.paperless_consent and mine.paperless_consent_at is not None
        assert theirs.phone != "06 12 34 56 78" and mine.client_number != "00000000"
        user = db.session.scalar(sa.select(User).where(User.email == "locataire@example.org"))
        assert user.active and [r.name for r in user.roles] == ["Tenant"]


def test_profile_changes_need_the_csrf_token(app, client_for, demo):
    client = client_for("locataire@example.org")
    response = client.post("/mon-compte/coordonnees", data={"contact-phone": "0699999999"})
    assert response.status_code == 400
    response = client.post("/mon-compte/mot-de-passe", data={"pw-current_password": PASSWORD,
                                                            "pw-password": NEW_PASSWORD, "pw-confirm": NEW_PASSWORD})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(Household, demo["locataire"]).phone != "06 99 99 99 99"
    assert login(app.test_client(), "locataire@example.org", PASSWORD).status_code == 302


def test_staff_cannot_reach_tenant_profile_and_tenant_cannot_reach_staff(client_for):
    assert client_for("gestionnaire@example.org").get("/mon-compte/").status_code in (403, 404)
    assert client_for("locataire@example.org").get("/stafftenantaccountview/list/").status_code == 403


# --- closing, deactivation, housekeeping --------------------------------------------------------------------------

def test_closing_the_account_keeps_the_household_and_allows_a_new_registration(app, client_for, demo):
    client = client_for("retard@example.org")
    wrong = _profile_post(client, "/mon-compte/fermer", password="faux")
    assert "Le mot de passe est incorrect." in body(wrong)
    response = _profile_post(client, "/mon-compte/fermer", password=PASSWORD)
    assert response.status_code == 302
    assert client.get("/mon-compte/").status_code == 302
    assert "incorrect" in body(login(app.test_client(), "retard@example.org", PASSWORD))
    with app.app_context():
        household = db.session.get(Household, demo["retard"])
        assert household.leases and household.account is None
        number, surname = household.client_number, household.signatory_last_name
        assert db.session.scalar(sa.select(User).where(User.email == "retard@example.org")) is None
    register(app.test_client(), number, surname, email="retard@example.org")
    assert account_of(app, demo["retard"])[0] == "retard@example.org"


def _end_leases(app, household_id, end):
    with app.app_context():
        db.session.execute(sa.update(Lease).where(Lease.household_id == household_id).values(end_date=end))
        db.session.commit()


def test_deactivation_job_and_home_notice(app, client_for, demo):
    today = date.today()
    recent, old = today - timedelta(days=30), today - timedelta(days=200)
    _end_leases(app, demo["locataire"], recent)
    _end_leases(app, demo["retard"], old)
    tenant = client_for("locataire@example.org")
    late = client_for("retard@example.org")
    page = body(tenant.get("/"))
    assert "Votre espace sera désactivé le" in page
    with app.app_context():
        assert accounts.deactivate_moved_out(utcnow()) == 1
        assert accounts.deactivate_moved_out(utcnow()) == 0
        users = {u.email: u.active for u in db.session.scalars(sa.select(User))}
    assert users["retard@example.org"] is False and users["locataire@example.org"] is True
    assert late.get("/").status_code == 302  # its open session ended
    assert tenant.get("/").status_code == 200


def test_purge_job_removes_expired_links_only(app, newcomer):
    register(app.test_client(), newcomer["client_number"], newcomer["surname"])
    with app.app_context():
        assert accounts.purge_expired(utcnow()) == 0
        assert accounts.purge_expired(utcnow() + timedelta(hours=25)) == 1
        assert db.session.scalar(sa.select(sa.func.count(AccountToken.id))) == 0


# --- staff --------------------------------------------------------------------------------------------------------

def test_staff_resend_activation_and_disable(app, client_for, newcomer, mailbox):
    register(app.test_client(), newcomer["client_number"], newcomer["surname"])
    mailbox.deliver()
    with app.app_context():
        pending = db.session.scalar(sa.select(TenantAccount.id).where(TenantAccount.household_id == newcomer["id"]))
        active = db.session.scalar(sa.select(TenantAccount.id).join(User).where(User.email == "locataire@example.org"))
    staff = client_for("gestionnaire@example.org")
    tenant = client_for("locataire@example.org")
    token = csrf_token(staff, "/stafftenantaccountview/list/")  # the list's own action form
    response = staff.post("/stafftenantaccountview/action_post",
                          data={"action": "resend_activation", "rowid": [str(pending)], "csrf_token": token})
    assert response.status_code == 302
    mailbox.deliver()
    assert len(mailbox.to("nouveau@example.net")) == 2
    page = body(staff.get(f"/stafftenantaccountview/show/{active}"))
    assert "locataire@example.org" in page and "pbkdf2" not in page and "scrypt" not in page
    staff.post("/stafftenantaccountview/action_post",
               data={"action": "disable", "rowid": [str(active)], "csrf_token": token})
    assert tenant.get("/").status_code == 302
    assert "incorrect" in body(login(app.test_client(), "locataire@example.org", PASSWORD))


def test_tenant_cannot_use_staff_actions(app, client_for, demo):
    with app.app_context():
        active = db.session.scalar(sa.select(TenantAccount.id).join(User).where(User.email == "retard@example.org"))
    tenant = client_for("locataire@example.org")
    token = csrf_token(tenant, "/mon-compte/fermer")
    response = tenant.post("/stafftenantaccountview/action_post",
                           data={"action": "disable", "rowid": [str(active)], "csrf_token": token})
    assert response.status_code in (302, 403)
    assert login(app.test_client(), "retard@example.org", PASSWORD).status_code == 302


def test_admin_setting_a_password_ends_the_users_sessions(app, client_for):
    tenant = client_for("locataire@example.org")
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "locataire@example.org"))
        app.appbuilder.sm.reset_password(user.id, NEW_PASSWORD)
    assert tenant.get("/mon-compte/").status_code == 302
    assert login(app.test_client(), "locataire@example.org", NEW_PASSWORD).status_code == 302


def test_registration_is_throttled_per_client_number(app, newcomer):
    for attempt in range(accounts.REGISTER_LIMIT):
        register(app.test_client(), newcomer["client_number"], f"Faux{attempt}", email=f"x{attempt}@example.net")
    page = body(register(app.test_client(), newcomer["client_number"], newcomer["surname"]))
    assert "Trop de tentatives pour ce numéro. Réessayez après" in page
    assert account_of(app, newcomer["id"]) is None


def test_mail_follows_the_tenants_language_and_escapes_names(app, newcomer, mailbox):
    with app.app_context():
        db.session.get(Household, newcomer["id"]).signatory_first_name = "<script>alert(1)</script>"
        db.session.commit()
    client = app.test_client()
    client.get("/lang/en")
    register(client, newcomer["client_number"], newcomer["surname"])
    mailbox.deliver()
    message = mailbox.last_to("nouveau@example.net")
    assert message["Subject"] == "Activate your tenant account"
    assert "<script>" not in html_of(message) and "&lt;script&gt;" in html_of(message)
    with app.app_context():
        assert db.session.scalar(sa.select(TenantAccount.locale).where(
            TenantAccount.household_id == newcomer["id"])) == "en"


@pytest.mark.parametrize("situation", [" ", "NOT_A_SITUATION"])
def test_a_situation_outside_the_list_is_refused_next_to_the_field(client_for, situation):
    """« » used to pass the choice check (Optional() cleared its error) and crash on the enum lookup."""
    response = _profile_post(client_for("locataire@example.org"), "/mon-compte/coordonnees", phone="0612345678",
                             professional_situation=situation)
    assert response.status_code == 400
