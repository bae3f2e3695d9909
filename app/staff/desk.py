"""Staff desks: one request with its whole timeline (internal notes included) and the reply, status and
assignment forms; one insurance certificate with its PDF and the decision form. Views are named Staff* (role)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.sqla.models import Role, User
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, MultipleFileField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app import filestore, roles
from app.extensions import db
from app.models import (
    DirectDebitBatch, DirectDebitCollection, DirectDebitMandate, InsuranceCertificate, RequestStatus, ReviewStatus,
    TenantRequest, utcnow,
)
from app.services import direct_debits, insurance, queues, requests, sepa, uploads
from app.services.requests import RequestError
from app.security import get_in_scope, require_all_agencies
from app.tenant.pages import checked_files, show_field_error


class ReplyForm(FlaskForm):
    body = TextAreaField(_l("Message"), validators=[DataRequired(message=_l("Ce champ est obligatoire.")),
                                                    Length(max=5000)])
    internal = BooleanField(_l("Note interne (jamais montrée au locataire)"))
    attachments = MultipleFileField(_l("Pièces jointes"))


class StatusForm(FlaskForm):
    status = SelectField(_l("Nouveau statut"), choices=lambda: [(s.name, str(s.label)) for s in RequestStatus])
    comment = TextAreaField(_l("Message au locataire"), validators=[Optional(), Length(max=5000)],
                            description=_l("Envoyé par e-mail avec le changement de statut."))


class AssignForm(FlaskForm):
    # No Optional(): it would clear the "not a valid choice" error of a blank value such as " " (a 500 at int()).
    # "" (nobody) is one of the choices.
    user = SelectField(_l("Attribuée à"), choices=[])


class DecisionForm(FlaskForm):
    decision = SelectField(_l("Décision"), choices=lambda: [
        (ReviewStatus.VALIDATED.name, str(_l("Valider l'attestation"))),
        (ReviewStatus.REFUSED.name, str(_l("Refuser l'attestation"))),
        (ReviewStatus.INFO_REQUESTED.name, str(_l("Demander un complément")))])
    reason = TextAreaField(_l("Motif (envoyé au locataire)"), validators=[Optional(), Length(max=2000)])


def staff_users() -> list[tuple[str, str]]:
    users = db.session.scalars(sa.select(User).join(User.roles).where(
        Role.name.in_(roles.STAFF_ROLES), User.active.is_(True)).order_by(User.last_name)).unique().all()
    return [("", _("Personne"))] + [(str(u.id), f"{u.first_name} {u.last_name}") for u in users]


class StaffRequestDeskView(BaseView):
    route_base = "/agence/demandes"

    def _request(self, request_id) -> TenantRequest:
        return get_in_scope(TenantRequest, request_id)

    def _page(self, item, code=200, **forms):
        """The desk of `item` answered with HTTP `code`; `forms` (reply, status, assign) are the ones just posted,
        shown with their errors (the parameter is not called `status`: the status form is)."""
        assign = forms.get("assign") or AssignForm(formdata=None, prefix="assign")
        assign.user.choices = staff_users()
        if not forms.get("assign"):
            assign.user.data = str(item.assigned_to_id or "")
        return self.render_template(
            "staff/request_desk.html", item=item, events=requests.timeline(item, internal=True),
            reply=forms.get("reply") or ReplyForm(formdata=None, prefix="reply"),
            status_form=forms.get("status") or StatusForm(formdata=None, prefix="status"), assign=assign,
            days=requests.handling_days(item.category)), code

    @expose("/<int:request_id>")
    @has_access
    def detail(self, request_id):
        return self._page(self._request(request_id))

    @expose("/<int:request_id>/reponse", methods=["POST"])
    @has_access
    def reply(self, request_id):
        item = self._request(request_id)
        form = ReplyForm(prefix="reply")
        if form.validate_on_submit():
            try:
                requests.staff_reply(item, form.body.data, form.internal.data, checked_files(form.attachments.data),
                                     utcnow(), request_user_id())
            except uploads.UploadError as error:
                show_field_error(form, "attachments", str(error))
            except RequestError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Note interne enregistrée.") if form.internal.data else
                      _("Réponse envoyée au locataire."), "success")
                return redirect(url_for("StaffRequestDeskView.detail", request_id=request_id))
        return self._page(item, 400, reply=form)

    @expose("/<int:request_id>/statut", methods=["POST"])
    @has_access
    def status(self, request_id):
        item = self._request(request_id)
        form = StatusForm(prefix="status")
        if form.validate_on_submit():
            try:
                requests.staff_set_status(item, RequestStatus[form.status.data], form.comment.data or "", utcnow(),
                                          request_user_id())
            except RequestError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Statut changé ; le locataire est prévenu par e-mail."), "success")
                return redirect(url_for("StaffRequestDeskView.detail", request_id=request_id))
        return self._page(item, 400, status=form)

    @expose("/<int:request_id>/attribution", methods=["POST"])
    @has_access
    def assign(self, request_id):
        item = self._request(request_id)
        form = AssignForm(prefix="assign")
        form.user.choices = staff_users()
        if form.validate_on_submit():
            requests.staff_assign(item, int(form.user.data) if form.user.data else None, utcnow())
            flash(_("Attribution enregistrée."), "success")
            return redirect(url_for("StaffRequestDeskView.detail", request_id=request_id))
        return self._page(item, 400, assign=form)

    @expose("/piece/<int:attachment_id>")
    @has_access
    def attachment(self, attachment_id):
        from app.models import Attachment

        attachment = db.session.get(Attachment, attachment_id)
        if attachment is None:
            abort(404)
        get_in_scope(TenantRequest, attachment.event.request_id)  # another agency's: a 404
        key = uploads.key_of(attachment)
        if key is None:
            abort(404)
        return filestore.attachment(key, attachment.content_type, attachment.original_filename)


class StaffInsuranceDeskView(BaseView):
    route_base = "/agence/assurances"

    def _certificate(self, certificate_id) -> InsuranceCertificate:
        return get_in_scope(InsuranceCertificate, certificate_id)

    @expose("/<int:certificate_id>", methods=["GET", "POST"])
    @has_access
    def detail(self, certificate_id):
        certificate = self._certificate(certificate_id)
        form = DecisionForm()
        if form.validate_on_submit():
            try:
                insurance.decide(certificate, ReviewStatus[form.decision.data], form.reason.data or "", utcnow(),
                                 request_user_id())
            except insurance.InsuranceError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Décision enregistrée ; le locataire est prévenu par e-mail."), "success")
                return redirect(url_for("StaffInsuranceQueueView.list"))
        now = utcnow()
        return self.render_template("staff/insurance_desk.html", certificate=certificate, form=form,
                                    hours=int((now - certificate.created_at).total_seconds() // 3600),
                                    late=queues.is_late(certificate, now)), 400 if form.errors else 200

    @expose("/<int:certificate_id>/fichier")
    @has_access
    def document(self, certificate_id):
        certificate = self._certificate(certificate_id)
        key = uploads.key_of(certificate)
        if key is None:
            abort(404)
        return filestore.attachment(key, "application/pdf", certificate.original_filename or "attestation.pdf")


def request_user_id() -> int:
    from flask_login import current_user

    return current_user.id


class MandateDecisionForm(FlaskForm):
    decision = SelectField(_l("Décision"), choices=lambda: [
        ("activate", str(_l("Mandat signé reçu : activer"))), ("refuse", str(_l("Refuser le mandat")))])
    signed_on = DateField(_l("Date de signature du mandat"), validators=[Optional()])
    reason = TextAreaField(_l("Motif du refus (envoyé au locataire)"), validators=[Optional(), Length(max=2000)])


class RejectForm(FlaskForm):
    reason = StringField(_l("Code motif du rejet"), validators=[DataRequired(message=_l("Ce champ est obligatoire.")),
                                                               Length(max=10)],
                         description=_l("Le code de la banque, par exemple AM04 (provision insuffisante) ou MD06."))
    rejected_on = DateField(_l("Date du rejet"), validators=[DataRequired(message=_l("Saisissez une date valide."))])


class StaffMandateDeskView(BaseView):
    route_base = "/agence/mandats"

    def _mandate(self, mandate_id) -> DirectDebitMandate:
        return get_in_scope(DirectDebitMandate, mandate_id)

    @expose("/<int:mandate_id>", methods=["GET", "POST"])
    @has_access
    def detail(self, mandate_id):
        mandate = self._mandate(mandate_id)
        form = MandateDecisionForm()
        if form.validate_on_submit():
            try:
                if form.decision.data == "activate":
                    if form.signed_on.data is None:
                        raise sepa.SepaError(_("Indiquez la date de signature du mandat."), "signed_on")
                    sepa.activate(mandate, form.signed_on.data, utcnow())
                else:
                    sepa.refuse(mandate, form.reason.data or "", utcnow())
            except sepa.SepaError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Décision enregistrée ; le locataire est prévenu par e-mail."), "success")
                return redirect(url_for("StaffMandateDeskView.detail", mandate_id=mandate_id))
        return self.render_template("staff/mandate_desk.html", mandate=mandate, form=form), \
            400 if form.errors or form.form_errors else 200

    @expose("/<int:mandate_id>/rib")
    @has_access
    def rib(self, mandate_id):
        mandate = self._mandate(mandate_id)
        key = uploads.key_of(mandate)
        if key is None:
            abort(404)
        return filestore.attachment(key, mandate.content_type, mandate.original_filename or "rib")

    @expose("/lot/<int:batch_id>/fichier")
    @has_access
    def batch_file(self, batch_id):
        require_all_agencies()  # a bank file holds every agency's debits
        batch = db.session.get(DirectDebitBatch, batch_id)
        if batch is None:
            abort(404)
        return filestore.attachment(direct_debits.batch_key(batch), "application/xml",
                                    f"prelevements-{batch.collection_date}-{batch.schema}.xml")

    @expose("/prelevement/<int:collection_id>/rejet", methods=["GET", "POST"])
    @has_access
    def reject(self, collection_id):
        collection = get_in_scope(DirectDebitCollection, collection_id)
        form = RejectForm()
        if form.validate_on_submit():
            try:
                direct_debits.record_reject(collection, form.reason.data, form.rejected_on.data, utcnow().date(),
                                            utcnow())
            except sepa.SepaError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Rejet enregistré : le locataire est prévenu par e-mail et invité à payer en ligne."),
                      "success")
                return redirect(url_for("StaffDirectDebitCollectionView.list"))
        return self.render_template("staff/reject_form.html", collection=collection, form=form), \
            400 if form.errors or form.form_errors else 200
