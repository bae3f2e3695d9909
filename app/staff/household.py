"""The household page (« fiche foyer », `/agence/foyers/<id>`): everything about one household on one screen, and
the actions staff take from there. The figures and the actions are app.services.household_file's; a household of
another agency is a 404 (`get_in_scope`), every form carries its CSRF token, and every change is audited."""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, FileField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app import filestore
from app.models import Document, Household, NoteKind, RequestCategory, utcnow
from app.security import get_for_household, get_in_scope
from app.services import documents, household_file, requests, uploads
from app.services.household_file import FileError
from app.staff.fields import MoneyField
from app.staff.views import _audit_changes as audit_changes
from app.tenant.pages import show_field_error

REQUIRED = _l("Ce champ est obligatoire.")


class NoteForm(FlaskForm):
    kind = SelectField(_l("Type de note"), choices=lambda: [(kind.name, str(kind.label)) for kind in NoteKind])
    body = TextAreaField(_l("Note"), validators=[DataRequired(message=REQUIRED), Length(max=household_file.MAX_NOTE)],
                         description=_l("Ce que le locataire a dit ou ce qui a été convenu. Une note ne se modifie "
                                        "plus : une note suivante la corrige."))
    amount = MoneyField(_l("Montant promis"), validators=[Optional()],
                        description=_l("Pour une promesse de paiement seulement."))
    promised_on = DateField(_l("Payé au plus tard le"), validators=[Optional()],
                            description=_l("Pour une promesse de paiement seulement."))


class DocumentForm(FlaskForm):
    title = StringField(_l("Titre vu par le locataire"),
                        validators=[DataRequired(message=REQUIRED), Length(max=household_file.MAX_TITLE)])
    lease = SelectField(_l("Contrat"), choices=[], default="")
    file = FileField(_l("Fichier PDF"), description=_l("Un PDF de 8 Mo au plus."))
    confirm = BooleanField(_l("Je confirme : ce document concerne ce foyer, le locataire le verra dans son espace."),
                           validators=[DataRequired(message=_l("Cochez la case pour confirmer."))])


class OpenRequestForm(FlaskForm):
    category = SelectField(_l("Type de demande"), choices=lambda: [("", str(_l("Choisissez")))] + [
        (category.name, f"{category.kind.label} - {category.label}") for category in requests.TENANT_CATEGORIES])
    subject = StringField(_l("Objet"), validators=[DataRequired(message=REQUIRED), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[DataRequired(message=REQUIRED), Length(max=5000)],
                                description=_l("Ce que le locataire a demandé, avec ses mots. Il recevra un e-mail et "
                                               "suivra la demande dans son espace."))


class ConfirmForm(FlaskForm):
    """A button with its CSRF token (the action is in the URL)."""


class StaffHouseholdFileView(BaseView):
    route_base = "/agence/foyers"

    def _household(self, household_id) -> Household:
        return get_in_scope(Household, household_id)

    def _page(self, household: Household, code: int = 200, **posted):
        """The page answered with HTTP `code`; `posted` holds the form just sent back (with its errors), shown open."""
        document = posted.get("document") or DocumentForm(formdata=None, prefix="document")
        document.lease.choices = [("", _("Aucun (document du foyer)"))] + [
            (str(lease.id), f"{lease.display_number} - {lease.unit.kind.label}") for lease in household.leases]
        file = household_file.load(household, date.today())
        return self.render_template(
            "staff/household.html", file=file, household=file.household, title=str(file.household),
            note_form=posted.get("note") or NoteForm(formdata=None, prefix="note"), document_form=document,
            request_form=posted.get("request") or OpenRequestForm(formdata=None, prefix="request"),
            action_form=ConfirmForm(), opened=next(iter(posted), None), audit_changes=audit_changes), code

    def _done(self, household_id: int, message: str, anchor: str):
        flash(message, "success")
        return redirect(url_for("StaffHouseholdFileView.detail", household_id=household_id, _anchor=anchor))

    @expose("/<int:household_id>")
    @has_access
    def detail(self, household_id):
        return self._page(self._household(household_id))

    @expose("/<int:household_id>/note", methods=["POST"])
    @has_access
    def note(self, household_id):
        household = self._household(household_id)
        form = NoteForm(prefix="note")
        if form.validate_on_submit():
            kind = NoteKind[form.kind.data]
            try:
                household_file.add_note(household, kind, form.body.data, form.amount.data, form.promised_on.data,
                                        date.today(), current_user.id)
            except FileError as error:
                show_field_error(form, error.field, error.message)
            else:
                return self._done(household_id, _("Promesse de paiement enregistrée.")
                                  if kind is NoteKind.PAYMENT_PROMISE else _("Note enregistrée."), "notes")
        return self._page(household, 400, note=form)

    @expose("/<int:household_id>/document", methods=["POST"])
    @has_access
    def document(self, household_id):
        household = self._household(household_id)
        form = DocumentForm(prefix="document")
        form.lease.choices = [("", "")] + [(str(lease.id), "") for lease in household.leases]
        if form.validate_on_submit():
            try:
                checked = uploads.check(form.file.data, (uploads.PDF,))
                household_file.attach_document(household, int(form.lease.data) if form.lease.data else None,
                                               form.title.data, checked, utcnow(), current_user.id)
            except uploads.UploadError as error:
                show_field_error(form, "file", str(error))
            except FileError as error:
                show_field_error(form, error.field, error.message)
            else:
                return self._done(household_id, _("Document « %(title)s » ajouté à l'espace du locataire.",
                                                  title=form.title.data.strip()), "documents")
        return self._page(household, 400, document=form)

    @expose("/<int:household_id>/demande", methods=["POST"])
    @has_access
    def open_request(self, household_id):
        household = self._household(household_id)
        form = OpenRequestForm(prefix="request")
        if form.validate_on_submit():
            try:
                category = RequestCategory[form.category.data] if form.category.data else None
                request = household_file.open_request(household, category, form.subject.data, form.description.data,
                                                      utcnow(), current_user.id)
            except FileError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Demande %(number)s ouverte pour le locataire ; il est prévenu par e-mail.",
                        number=request.number), "success")
                return redirect(url_for("StaffRequestDeskView.detail", request_id=request.id))
        return self._page(household, 400, request=form)

    @expose("/<int:household_id>/activation", methods=["POST"])
    @has_access
    def resend_activation(self, household_id):
        household = self._household(household_id)
        if ConfirmForm().validate_on_submit():
            try:
                household_file.resend_activation(household, utcnow())
            except FileError as error:
                flash(error.message, "warning")
            else:
                return self._done(household_id, _("E-mail d'activation renvoyé à %(email)s.",
                                                  email=household.account.user.email), "account")
        return redirect(url_for("StaffHouseholdFileView.detail", household_id=household_id, _anchor="account"))

    @expose("/<int:household_id>/desactivation", methods=["GET", "POST"])
    @has_access
    def disable(self, household_id):
        """Disabling an account cannot be undone from the portal: a page asks first."""
        household = self._household(household_id)
        form = ConfirmForm()
        if form.validate_on_submit():
            try:
                household_file.disable_account(household, utcnow())
            except FileError as error:
                flash(error.message, "warning")
                return redirect(url_for("StaffHouseholdFileView.detail", household_id=household_id,
                                        _anchor="account"))
            return self._done(household_id, _("Compte désactivé : le locataire ne peut plus se connecter et ses "
                                              "sessions sont fermées."), "account")
        if household.account is None or not household.account.user.active:
            flash(_("Ce compte est déjà désactivé.") if household.account else _("Ce foyer n'a pas de compte."),
                  "warning")
            return redirect(url_for("StaffHouseholdFileView.detail", household_id=household_id, _anchor="account"))
        return self.render_template("staff/household_disable.html", household=household, form=form,
                                    title=_("Désactiver le compte")), 400 if form.errors else 200

    @expose("/<int:household_id>/document/<int:document_id>")
    @has_access
    def download(self, household_id, document_id):
        """A document as the tenant gets it (rendered again if its file is missing)."""
        document = get_for_household(Document, document_id, self._household(household_id))
        try:
            key = documents.ensure_file(document)
        except documents.DocumentUnavailable as error:
            flash(str(error), "warning")
            return redirect(url_for("StaffHouseholdFileView.detail", household_id=household_id,
                                    _anchor="documents"))
        return filestore.attachment(key, "application/pdf", document.original_filename or document.stored_name)
