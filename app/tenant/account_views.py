"""Account pages open to everyone (registration, activation, recovery, terms) and the login/logout pair.

Views only translate between HTTP and `app.services.accounts`. Recovery pages answer the same whatever the input,
so they reveal nothing about which accounts or client numbers exist.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import no_cache
from flask_appbuilder.security.views import AuthDBView
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from app.models import TokenPurpose, utcnow
from app.security import is_staff
from app.services import accounts, second_factor
from app.tenant.forms import (
    CodeForm, EmailOnlyForm, ForgotIdentifierForm, LoginForm, RegisterForm, ResetPasswordForm,
)

PENDING_KEY = "_2fa_pending"  # the staff member whose password was right, waiting for the code
PENDING_SECONDS = 300


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this portal only (no scheme, host, `//` or backslash tricks)."""
    if not target or any(c in target for c in "\\\r\n\t") or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def show_error(form, error: accounts.AccountError) -> None:
    """Put a service's message next to its field, or above the form."""
    if error.field and error.field in form:
        form[error.field].errors = list(form[error.field].errors) + [error.message]
    else:
        form.form_errors.append(error.message)


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale and locale.language in ("fr", "en") else "fr"


class AccountView(BaseView):
    """Public account pages (no @has_access: everyone may reach them)."""

    route_base = "/compte"
    default_view = "register"
    template = "account/form.html"

    def _form_page(self, form, title, intro=None, submit=None, status=200, **extra):
        return self.render_template(self.template, form=form, title=title, intro=intro, submit=submit,
                                    **extra), status

    def _message(self, title, message, links=(), status=200):
        return self.render_template("account/message.html", title=title, message=message, links=links), status

    @expose("/creer", methods=["GET", "POST"])
    def register(self):
        form = RegisterForm()
        if form.validate_on_submit():
            try:
                email = accounts.register(accounts.Registration(
                    reference=form.reference.data, surname=form.surname.data, email=form.email.data,
                    password=form.password.data, confirm=form.confirm.data, locale=current_language()), utcnow())
            except accounts.AccountError as error:
                show_error(form, error)
            else:
                return self._message(_("Vérifiez votre messagerie"), _(
                    "Nous avons envoyé un e-mail à %(email)s. Cliquez sur le lien qu'il contient dans les 24 heures "
                    "pour activer votre espace.", email=email),
                    links=[(url_for("AccountView.resend"), _("Je n'ai pas reçu l'e-mail"))])
        return self._form_page(form, _("Créer mon espace"), submit=_("Créer mon espace"),
                               intro=_("Munissez-vous de votre dernier avis d'échéance : le numéro client y figure."),
                               password_policy=True, terms_link=True)

    @expose("/activer/<token>")
    @no_cache
    def activate(self, token):
        try:
            accounts.activate(token, utcnow())
        except accounts.TokenError as error:
            return self._token_problem(error, url_for("AccountView.resend"), _("Recevoir un nouveau lien"))
        flash(_("Votre espace est activé. Connectez-vous avec votre adresse e-mail et votre mot de passe."),
              "success")
        return redirect(url_for("PortalAuthDBView.login"))

    def _token_problem(self, error, retry_url, retry_label):
        if error.reason == "expired":
            return self._message(_("Ce lien a expiré"), _("Pour des raisons de sécurité, ce lien n'est plus "
                                                            "valable. Demandez-en un nouveau."),
                                 links=[(retry_url, retry_label)], status=410)
        return self._message(_("Lien non valide"), _("Ce lien n'est pas valide ou a déjà été utilisé. Si votre "
                                                       "espace est déjà activé, connectez-vous."),
                             links=[(url_for("PortalAuthDBView.login"), _("Se connecter")), (retry_url, retry_label)],
                             status=404)

    @expose("/renvoyer", methods=["GET", "POST"])
    def resend(self):
        form = EmailOnlyForm()
        if form.validate_on_submit():
            accounts.resend_activation(form.email.data, utcnow())
            return self._message(_("Vérifiez votre messagerie"), _(
                "Si un espace en attente d'activation correspond à cette adresse, un nouveau lien vient d'y être "
                "envoyé. Il est valable 24 heures."))
        return self._form_page(form, _("Recevoir un nouveau lien d'activation"), submit=_("Envoyer le lien"))

    @expose("/identifiant-oublie", methods=["GET", "POST"])
    def forgot_identifier(self):
        form = ForgotIdentifierForm()
        if form.validate_on_submit():
            accounts.remind_identifier(form.reference.data, form.surname.data, utcnow())
            return self._message(_("Vérifiez votre messagerie"), _(
                "Si ces informations correspondent à un contrat, nous avons envoyé votre identifiant à l'adresse "
                "e-mail connue pour ce foyer."))
        return self._form_page(form, _("Identifiant oublié"), submit=_("Recevoir mon identifiant"))

    @expose("/mot-de-passe-oublie", methods=["GET", "POST"])
    def forgot_password(self):
        form = EmailOnlyForm()
        if form.validate_on_submit():
            accounts.request_password_reset(form.email.data, utcnow())
            return self._message(_("Vérifiez votre messagerie"), _(
                "Si un espace correspond à cette adresse, un lien pour choisir un nouveau mot de passe vient d'y "
                "être envoyé. Il est valable 1 heure."))
        return self._form_page(form, _("Mot de passe oublié"), submit=_("Recevoir un lien"))

    @expose("/nouveau-mot-de-passe/<token>", methods=["GET", "POST"])
    @no_cache
    def reset_password(self, token):
        retry = (url_for("AccountView.forgot_password"), _("Recevoir un nouveau lien"))
        try:
            accounts.check_token(token, TokenPurpose.PASSWORD_RESET, utcnow())
        except accounts.TokenError as error:
            return self._token_problem(error, *retry)
        form = ResetPasswordForm()
        if form.validate_on_submit():
            try:
                accounts.reset_password(token, form.password.data, form.confirm.data, utcnow())
            except accounts.TokenError as error:
                return self._token_problem(error, *retry)
            except accounts.AccountError as error:
                show_error(form, error)
            else:
                flash(_("Votre mot de passe est changé. Connectez-vous avec ce nouveau mot de passe."), "success")
                return redirect(url_for("PortalAuthDBView.login"))
        return self._form_page(form, _("Choisir un nouveau mot de passe"), submit=_("Enregistrer"),
                               password_policy=True)

    @expose("/confirmer-email/<token>")
    @no_cache
    def confirm_email(self, token):
        try:
            accounts.confirm_email_change(token, utcnow())
        except accounts.TokenError as error:
            return self._token_problem(error, url_for("TenantProfileView.index"), _("Informations personnelles"))
        except accounts.AccountError as error:
            return self._message(_("Adresse non modifiée"), error.message, status=409)
        flash(_("Votre nouvelle adresse e-mail est enregistrée. Elle est maintenant votre identifiant."), "success")
        return redirect(url_for("HomeIndexView.index"))

    @expose("/conditions")
    def terms(self):
        return self.render_template("account/terms.html")


class PortalAuthDBView(AuthDBView):
    """Flask-AppBuilder's login page, with the portal's rules: per-account throttle, generic messages, a fresh
    session with its server-side record and the user's session version, and redirects that stay on the portal."""

    @expose("/login/", methods=["GET", "POST"])
    @no_cache
    def login(self):
        target = safe_next(request.args.get("next"))
        if current_user.is_authenticated:
            return redirect(target)
        form = LoginForm()
        if form.validate_on_submit():
            try:
                user = accounts.authenticate(form.username.data, form.password.data, utcnow())
            except accounts.AccountError as error:
                form.form_errors.append(error.message)
            else:
                session.clear()  # no session fixation: the signed-in session starts empty
                if is_staff(user) and second_factor.is_on(user.id):  # the password is half of it: the code next
                    session[PENDING_KEY] = {"user": user.id, "at": utcnow().timestamp(), "next": target}
                    return redirect(url_for("PortalAuthDBView.login_code"))
                # login_user opens the server-side session and copies the session version into the cookie
                # (app.security.start_server_session), for staff and tenants alike.
                login_user(user, remember=False)
                return redirect(target)
        return self.render_template(self.login_template, form=form, title=_("Connexion"),
                                    appbuilder=self.appbuilder)

    @expose("/login/code", methods=["GET", "POST"])
    @no_cache
    def login_code(self):
        """The second step of a staff sign-in with a second factor: the 6-digit code, within 5 minutes of the
        password."""
        pending = session.get(PENDING_KEY)
        if not isinstance(pending, dict) or utcnow().timestamp() - float(pending.get("at", 0)) > PENDING_SECONDS:
            session.pop(PENDING_KEY, None)
            flash(_("Reconnectez-vous : le code doit suivre le mot de passe de près."), "info")
            return redirect(url_for("PortalAuthDBView.login"))
        form = CodeForm()
        if form.validate_on_submit():
            try:
                second_factor.verify(int(pending["user"]), form.code.data, utcnow())
            except second_factor.SecondFactorError as error:
                form.code.errors = [*form.code.errors, error.message]
            else:
                session.clear()
                user = self.appbuilder.sm.get_user_by_id(int(pending["user"]))
                if user is None or not user.active:  # removed or disabled between the password and the code
                    flash(_("Ce compte ne peut plus se connecter."), "warning")
                    return redirect(url_for("PortalAuthDBView.login"))
                login_user(user, remember=False)
                return redirect(safe_next(pending.get("next")))
        return self.render_template("account/form.html", form=form, title=_("Code de vérification"),
                                    intro=_("Ouvrez votre application d'authentification et tapez le code à 6 chiffres "
                                            "de l'Espace locataire."), submit=_("Se connecter"),
                                    appbuilder=self.appbuilder), 400 if form.errors else 200

    @expose("/logout/", methods=["GET", "POST"])
    def logout(self):
        """End the session on the server (app.security.end_server_session revokes its record: a copy of the cookie
        is worth nothing from then on) and in the browser. Only a POST with the CSRF token logs out (the navigation
        bars hold a small form): a GET, from a link or an image on another site, shows the button instead."""
        if request.method == "GET":
            if not current_user.is_authenticated:
                return redirect(url_for("PortalAuthDBView.login"))
            return self.render_template("account/logout.html", title=_("Se déconnecter"), appbuilder=self.appbuilder)
        logout_user()
        session.clear()
        flash(_("Vous êtes déconnecté."), "info")
        return redirect(url_for("PortalAuthDBView.login"))
