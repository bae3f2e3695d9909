"""« Informations personnelles »: the signed-in tenant's contact details, password, email and closing."""

from __future__ import annotations

from flask import abort, flash, redirect, session, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from app.models import ProfessionalSituation, utcnow
from app.security import current_household
from app.services import accounts
from app.tenant.account_views import show_error
from app.tenant.forms import ChangeEmailForm, ChangePasswordForm, CloseAccountForm, ContactForm


# Three forms share one page: prefixes keep their field ids and names apart.
CONTACT, PASSWORD, EMAIL = "contact", "pw", "mail"


class TenantProfileView(BaseView):
    route_base = "/mon-compte"
    default_view = "index"

    def _household(self):
        household = current_household()
        if household is None:
            abort(404)
        return household

    def _page(self, status=200, **forms):
        household = self._household()
        contact = forms.get("contact") or ContactForm(formdata=None, prefix=CONTACT, data={
            "phone": household.phone,
            "professional_situation": household.professional_situation.name if household.professional_situation
            else "",
            "paperless": household.paperless_consent})
        return self.render_template(
            "tenant/profile.html", household=household, contact=contact,
            password=forms.get("password") or ChangePasswordForm(formdata=None, prefix=PASSWORD),
            email=forms.get("email") or ChangeEmailForm(formdata=None, prefix=EMAIL),
            ), status

    @expose("/")
    @has_access
    def index(self):
        return self._page()

    @expose("/coordonnees", methods=["POST"])
    @has_access
    def contact(self):
        form = ContactForm(prefix=CONTACT)
        if form.validate_on_submit():
            situation = form.professional_situation.data
            try:
                accounts.update_contact(self._household(), form.phone.data,
                                        ProfessionalSituation[situation] if situation else None,
                                        form.paperless.data, utcnow())
            except accounts.AccountError as error:
                show_error(form, error)
            else:
                flash(_("Vos coordonnées sont enregistrées."), "success")
                return redirect(url_for("TenantProfileView.index"))
        return self._page(status=400, contact=form)

    @expose("/mot-de-passe", methods=["POST"])
    @has_access
    def password(self):
        form = ChangePasswordForm(prefix=PASSWORD)
        if form.validate_on_submit():
            try:
                version = accounts.change_password(current_user, form.current_password.data, form.password.data,
                                                   form.confirm.data, utcnow())
            except accounts.AccountError as error:
                show_error(form, error)
            else:
                session["_sv"] = version  # this session stays open; every other one ends
                flash(_("Votre mot de passe est changé. Vos autres sessions ont été fermées."), "success")
                return redirect(url_for("TenantProfileView.index"))
        return self._page(status=400, password=form)

    @expose("/email", methods=["POST"])
    @has_access
    def email(self):
        form = ChangeEmailForm(prefix=EMAIL)
        if form.validate_on_submit():
            try:
                accounts.request_email_change(current_user, form.email.data, form.password.data, utcnow())
            except accounts.AccountError as error:
                show_error(form, error)
            else:
                flash(_("Un lien de confirmation a été envoyé à %(email)s. Votre adresse change quand vous "
                         "cliquez sur ce lien.", email=form.email.data.strip().lower()), "success")
                return redirect(url_for("TenantProfileView.index"))
        return self._page(status=400, email=form)

    @expose("/fermer", methods=["GET", "POST"])
    @has_access
    def close(self):
        form = CloseAccountForm()
        if form.validate_on_submit():
            try:
                accounts.close_account(current_user, form.password.data, utcnow())
            except accounts.AccountError as error:
                show_error(form, error)
            else:
                logout_user()
                session.clear()
                flash(_("Votre espace locataire est fermé. Vos contrats ne changent pas. Vous pourrez créer un "
                         "nouvel espace quand vous le souhaitez."), "info")
                return redirect(url_for("PortalAuthDBView.login"))
        return self.render_template("tenant/close.html", form=form, household=self._household())
