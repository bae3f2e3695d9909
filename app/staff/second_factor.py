"""« Double authentification »: a staff member or administrator turns the second factor on (or off, with a code)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm

from app.models import utcnow
from app.security import is_staff
from app.services import second_factor
from app.tenant.forms import CodeForm


class StaffSecondFactorView(BaseView):
    route_base = "/agence/double-authentification"
    default_view = "index"

    def _page(self, code_form=None, status=200):
        factor = second_factor.factor_of(current_user.id)
        pending = factor is not None and factor.confirmed_at is None
        uri = second_factor.provisioning_uri(factor, current_user.email) if pending else None
        return self.render_template(
            "staff/second_factor.html", title=_l("Double authentification"), factor=factor, pending=pending,
            qr=second_factor.qr_svg(uri) if uri else None, secret=factor.secret if pending else None,
            code_form=code_form or CodeForm(), start_form=FlaskForm(), required=second_factor.required()), status

    @expose("/")
    @has_access
    def index(self):
        return self._page()

    @expose("/activer", methods=["POST"])
    @has_access
    def start(self):
        if FlaskForm().validate_on_submit():
            try:
                second_factor.start(current_user, utcnow())
            except second_factor.SecondFactorError as error:
                flash(str(error.message), "warning")
        return redirect(url_for("StaffSecondFactorView.index"))

    @expose("/confirmer", methods=["POST"])
    @has_access
    def confirm(self):
        form = CodeForm()
        if form.validate_on_submit():
            try:
                second_factor.confirm(current_user, form.code.data, utcnow())
            except second_factor.SecondFactorError as error:
                form.code.errors = [*form.code.errors, error.message]
            else:
                flash(_("La double authentification est active : le code sera demandé à chaque connexion."),
                      "success")
                return redirect(url_for("StaffSecondFactorView.index"))
        return self._page(form, 400)

    @expose("/desactiver", methods=["POST"])
    @has_access
    def turn_off(self):
        form = CodeForm()
        if second_factor.required():
            flash(_("La double authentification est obligatoire pour le personnel : elle reste active."), "warning")
            return redirect(url_for("StaffSecondFactorView.index"))
        if form.validate_on_submit():
            try:
                second_factor.turn_off(current_user, form.code.data, utcnow())
            except second_factor.SecondFactorError as error:
                form.code.errors = [*form.code.errors, error.message]
            else:
                flash(_("La double authentification est désactivée."), "success")
                return redirect(url_for("StaffSecondFactorView.index"))
        return self._page(form, 400)


ALWAYS_OPEN = {"static", "appbuilder.static", "health.health", "PortalAuthDBView.login", "PortalAuthDBView.logout",
               "PortalAuthDBView.login_code", "LocaleView.index"}


def require_second_factor():
    """With STAFF_SECOND_FACTOR_REQUIRED, a signed-in staff member or administrator without a second factor reaches
    only the page that turns it on (and logout)."""
    if not second_factor.required() or not current_user.is_authenticated or not is_staff():
        return None
    if request.endpoint in ALWAYS_OPEN or (request.endpoint or "").startswith("StaffSecondFactorView."):
        return None
    if second_factor.is_on(current_user.id):
        return None
    flash(_("Activez la double authentification pour continuer : elle est obligatoire pour le personnel."),
          "warning")
    return redirect(url_for("StaffSecondFactorView.index"))
