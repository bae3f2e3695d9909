"""The tenant's pages: Contrat, Documents, Paiement, Demandes, and the public check of a rent certificate.

Every object named in a URL is fetched with `get_for_household`: another household's object is a 404.
"""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.security import check_password_hash
from wtforms.fields.choices import SelectChoice

from app import filestore
from app.extensions import db
from app.formatting import money
from app.models import (
    DirectDebitMandate, Document, Lease, MandateStatus, Occupant, OccupantRelation, PaymentStatus, PaymentTransaction,
    RequestCategory, TenantRequest, utcnow,
)
from app.security import current_household, get_for_household
from app.services import direct_debits, documents, insurance, ledger, payments, requests, sepa, uploads
from app.services.requests import RequestError
from app.tenant.forms import (
    AddInformationForm, CertificateCheckForm, DirectDebitForm, InsuranceForm, NewRequestForm, OccupantArrivalForm,
    OccupantDepartureForm, PayForm, RateForm, ReopenForm,
)


def household_or_404():
    household = current_household()
    if household is None:
        abort(404)
    return household


def pdf_response(data: bytes | None, filename: str, key: str | None = None) -> Response:
    """A PDF download, made now (`data`) or stored (`key`, in the file store): always an attachment, never
    cached."""
    if key is not None:
        return filestore.attachment(key, "application/pdf", filename)
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


class TenantContractView(BaseView):
    route_base = "/contrat"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        household = household_or_404()
        today = date.today()
        status, certificate = insurance.status(household, today)
        return self.render_template("tenant/contract.html", household=household, today=today,
                                    occupants=requests.current_occupants(household, today),
                                    insurance=status, certificate=certificate, latest=insurance.latest(household))

    @expose("/assurance", methods=["GET", "POST"])
    @has_access
    def insurance(self):
        household = household_or_404()
        current = insurance.latest(household)
        form = InsuranceForm()
        if request.method == "GET" and current is not None:
            form.insurer.data, form.policy_number.data = current.insurer, current.policy_number
            if current.end_date >= date.today():
                form.start_date.data, form.end_date.data = current.start_date, current.end_date
        if form.validate_on_submit():
            try:
                insurance.submit(household, insurance.Submission(
                    form.insurer.data, form.policy_number.data, form.start_date.data, form.end_date.data),
                    form.document.data, utcnow())
            except insurance.InsuranceError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Votre attestation est envoyée. Votre agence la vérifie sous 48 heures."), "success")
                return redirect(url_for("TenantContractView.index"))
        return self.render_template("tenant/insurance_form.html", form=form, current=current,
                                    insurers=insurance.COMMON_INSURERS), \
            400 if form.errors or form.form_errors else 200

    def _declare(self, form, title, declare):
        """Shared by both occupant forms: `declare()` creates the request, or raises RequestError for a field."""
        if form.validate_on_submit():
            try:
                created = declare()
            except RequestError as error:
                form[error.field].errors = list(form[error.field].errors) + [error.message]
            else:
                flash(_("Votre demande %(number)s est envoyée à votre agence. La liste des occupants sera mise à "
                        "jour après sa validation.", number=created.number), "success")
                return redirect(url_for("TenantContractView.index"))
        return self.render_template("tenant/occupant_form.html", form=form, title=title), \
            400 if form.errors else 200

    @expose("/occupant/arrivee", methods=["GET", "POST"])
    @has_access
    def arrival(self):
        household = household_or_404()
        form = OccupantArrivalForm()
        return self._declare(form, _("Déclarer l'arrivée d'un occupant"), lambda: requests.declare_arrival(
            household, form.last_name.data, form.first_name.data, form.birth_date.data,
            OccupantRelation[form.relation.data], form.arrival_date.data, utcnow(), current_user.id))

    @expose("/occupant/depart", methods=["GET", "POST"])
    @has_access
    def departure(self):
        household = household_or_404()
        form = OccupantDepartureForm()
        form.occupant.choices = [(o.id, f"{o.first_name} {o.last_name}")
                                 for o in requests.current_occupants(household, date.today())
                                 if o.relation is not OccupantRelation.SIGNATORY]
        return self._declare(form, _("Déclarer le départ d'un occupant"), lambda: requests.declare_departure(
            household, get_for_household(Occupant, form.occupant.data, household), form.departure_date.data,
            utcnow(), current_user.id))


class TenantDocumentsView(BaseView):
    route_base = "/documents"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        household = household_or_404()
        return self.render_template("tenant/documents.html", household=household,
                                    groups=documents.household_documents(household))

    @expose("/<int:document_id>")
    @has_access
    def download(self, document_id):
        document = get_for_household(Document, document_id, household_or_404())
        try:
            key = documents.ensure_file(document)
        except documents.DocumentUnavailable as error:
            return self._unavailable(str(error))
        return pdf_response(None, document.original_filename or document.stored_name, key=key)

    @expose("/recu/<int:lease_id>/<period>")
    @has_access
    def receipt(self, lease_id, period):
        lease = get_for_household(Lease, lease_id, household_or_404())
        if not documents.valid_period(period):
            abort(404)
        try:
            receipt = documents.receipt_for(lease, period)
        except documents.DocumentUnavailable as error:
            return self._unavailable(str(error))
        return pdf_response(receipt.pdf, receipt.filename, key=receipt.key)

    @expose("/attestation", methods=["POST"])
    @has_access
    def certificate(self):
        household = household_or_404()
        try:
            certificate, pdf = documents.rent_certificate(household, date.today())
        except documents.DocumentUnavailable as error:
            return self._unavailable(str(error), status=409)
        return pdf_response(pdf, f"attestation-loyer-a-jour-{certificate.issued_on:%Y-%m-%d}.pdf")

    def _unavailable(self, message: str, status: int = 404):
        return self.render_template("tenant/unavailable.html", message=message), status


class TenantPaymentView(BaseView):
    route_base = "/paiement"
    default_view = "index"

    def _pay_form(self, household, formdata=None, chosen=None):
        """The card payment form: each choice (all leases, or one) carries what it owes and its maximum."""
        form = PayForm(formdata=formdata)
        today, limits, form.lease.choices = date.today(), {}, []
        scopes = [("", _("Tous mes contrats"), None)] + [
            (str(lease.id), f"{lease.unit.kind.label} {lease.display_number}", lease) for lease in household.leases
            if lease.is_active]
        for value, label, lease in scopes:
            proposed, maximum = limits[value] = payments.pay_limits(household, lease, today)
            form.lease.choices.append(SelectChoice(value, label, {
                "data-amount": format_decimal(proposed, format="0.00"), "data-maximum": money(maximum)}))
        if formdata is None:  # ?contrat=<lease id> preselects one of the household's leases; anything else is ignored
            form.lease.data = chosen if chosen in limits else ""
            form.amount.data = format_decimal(limits[form.lease.data][0], format="0.00")
        form.scope_maximum = limits.get(form.lease.data or "", limits[""])[1]
        return form

    def _page(self, household, form, status=200):
        today = date.today()
        entries = ledger.lease_entries([lease.id for lease in household.leases])
        card_payments = db.session.scalars(sa.select(PaymentTransaction).where(
            PaymentTransaction.household_id == household.id, PaymentTransaction.status != PaymentStatus.CREATED)
            .order_by(PaymentTransaction.created_at.desc()).limit(24)).all()
        mandates = sepa.current_mandates(household)
        return self.render_template("tenant/payment.html", household=household, today=today, form=form,
                                    mandate=next((m for m in mandates if m.status in sepa.OPEN_STATUSES), None),
                                    last_mandate=mandates[0] if mandates else None,
                                    upcoming_debits=direct_debits.upcoming(household.id, today),
                                    balance=ledger.household_balance(household.id),
                                    overdue=ledger.household_overdue(household.id, today),
                                    history=list(reversed(ledger.history(entries))), card_payments=card_payments,
                                    maximum=form.scope_maximum), status

    @expose("/")
    @has_access
    def index(self):
        household = household_or_404()
        return self._page(household, self._pay_form(household, chosen=request.args.get("contrat")))

    @expose("/payer", methods=["POST"])
    @has_access
    def pay(self):
        household = household_or_404()
        form = self._pay_form(household, request.form)
        if form.validate_on_submit():
            lease_id = int(form.lease.data) if form.lease.data and form.lease.data.isdigit() else None
            try:
                transaction = payments.start_payment(household, lease_id, form.amount.data, utcnow())
            except payments.PaymentError as error:
                form[error.field].errors = list(form[error.field].errors) + [error.message]
            else:
                return self.render_template("tenant/pay_redirect.html", transaction=transaction,
                                            url=payments.payment_url(), fields=payments.payment_form(transaction))
        return self._page(household, form, status=400)

    @expose("/prelevement", methods=["GET", "POST"])
    @has_access
    def direct_debit(self):
        """Step 1 of the direct-debit subscription (or of a change of bank details): check, then review."""
        household = household_or_404()
        replacing = any(m.status is MandateStatus.ACTIVE for m in sepa.current_mandates(household))
        form = DirectDebitForm()
        leases = sepa.active_leases(household)
        form.leases.choices = [(lease.id, f"{lease.unit.kind.label} {lease.display_number}") for lease in leases]
        if request.method == "GET":
            form.account_holder.data = household.signatory_name.split(" ", 1)[-1].upper()
            form.street.data, form.postcode.data = household.billing_street, household.billing_postcode
            form.city.data = household.billing_city
            form.leases.data = [lease.id for lease in leases]
        if form.validate_on_submit():
            try:
                if replacing and not check_password_hash(current_user.password or "", form.password.data or ""):
                    raise sepa.SepaError(_("Le mot de passe est incorrect."), "password")
                if not form.leases.data:
                    raise sepa.SepaError(_("Choisissez au moins un contrat."), "leases")
                values = sepa.check_subscription(household, sepa.Subscription(
                    form.iban.data, form.bic.data, form.account_holder.data, form.street.data, form.postcode.data,
                    form.city.data, int(form.debit_day.data), form.consent.data, form.leases.data), replacing)
                checked = uploads.check(form.rib.data, (uploads.PDF, uploads.JPEG, uploads.PNG))
            except sepa.SepaError as error:
                show_field_error(form, error.field, error.message)
            except uploads.UploadError as error:
                show_field_error(form, "rib", str(error))
            else:
                from app import crypto

                holder = SimpleNamespace()
                uploads.store(checked, holder)
                # The cookie is signed, not encrypted: the draft (full IBAN) travels in it encrypted.
                session["sdd_draft"] = crypto.encrypt_json(dict(values, replacing=replacing, rib={
                    k: getattr(holder, k) for k in ("stored_name", "original_filename", "content_type",
                                                    "size_bytes", "sha256")}))
                masked = DirectDebitMandate(iban=values["iban"]).masked_iban
                covered = [lease for lease in leases if lease.id in values["lease_ids"]]
                return self.render_template("tenant/direct_debit_review.html", values=values, masked=masked,
                                            replacing=replacing, leases=covered)
        return self.render_template("tenant/direct_debit_form.html", form=form, replacing=replacing), \
            400 if form.errors or form.form_errors else 200

    @expose("/prelevement/valider", methods=["POST"])
    @has_access
    def direct_debit_confirm(self):
        """Step 2: the tenant confirmed the review; the mandate is created and waits for its signature."""
        from app import crypto

        household = household_or_404()
        draft = crypto.decrypt_json(session.pop("sdd_draft", None), ttl=3600)  # a review older than an hour: again
        if not isinstance(draft, dict):
            flash(_("Votre demande a expiré. Recommencez, s'il vous plaît."), "warning")
            return redirect(url_for("TenantPaymentView.direct_debit"))
        rib = draft.pop("rib")
        replacing = draft.pop("replacing")
        try:
            mandate = sepa.subscribe(household, draft, rib.pop("stored_name"), rib, utcnow(), replacing)
        except sepa.SepaError as error:
            flash(error.message, "danger")
            return redirect(url_for("TenantPaymentView.index"))
        flash(_("Votre mandat %(rum)s est prêt : téléchargez-le dans vos documents, signez-le et renvoyez-le à votre "
                "agence avec un RIB original.", rum=mandate.reference), "success")
        return redirect(url_for("TenantPaymentView.index"))

    @expose("/prelevement/arreter", methods=["POST"])
    @has_access
    def direct_debit_stop(self):
        """Stopping direct debit is a request to the agency (the mandate is the landlord's to revoke)."""
        household = household_or_404()
        created = requests.create_request(
            household, RequestCategory.ADMIN_OTHER, _("Arrêt du prélèvement automatique"),
            _("Je souhaite arrêter le prélèvement automatique de mes loyers."), utcnow(), author_id=current_user.id)
        db.session.commit()
        flash(_("Votre demande %(number)s est envoyée à votre agence.", number=created.number), "success")
        return redirect(url_for("TenantRequestsView.detail", request_id=created.id))

    @expose("/retour/<order_id>")
    @has_access
    def returned(self, order_id):
        """The browser's way back from the bank: shows what our database knows, whatever the URL says."""
        household = household_or_404()
        transaction = db.session.scalar(sa.select(PaymentTransaction).where(
            PaymentTransaction.order_id == order_id, PaymentTransaction.household_id == household.id))
        if transaction is None:
            abort(404)
        return self.render_template("tenant/pay_return.html", transaction=transaction,
                                    balance=ledger.household_balance(household.id))

    @expose("/recu/<int:transaction_id>")
    @has_access
    def card_receipt(self, transaction_id):
        transaction = get_for_household(PaymentTransaction, transaction_id, household_or_404())
        key = payments.ensure_receipt(transaction)
        if key is None:
            abort(404)
        return pdf_response(None, f"recu-paiement-{transaction.order_id}.pdf", key=key)


def checked_files(storages, allowed=(uploads.PDF, uploads.JPEG, uploads.PNG)) -> list:
    """The uploaded files of a multiple-file field, each checked by content (empty inputs are skipped)."""
    files = [storage for storage in (storages or []) if getattr(storage, "filename", "")]
    return [uploads.check(storage, allowed) for storage in files]


def show_field_error(form, field: str | None, message: str) -> None:
    target = form[field] if field and field in form else None
    if target is None:
        form.form_errors.append(message)
    else:
        target.errors = list(target.errors) + [message]


class TenantRequestsView(BaseView):
    route_base = "/demandes"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        household = household_or_404()
        items = requests.household_requests(household.id)
        return self.render_template("tenant/requests.html", household=household,
                                    pending=[r for r in items if r.status in requests.OPEN_STATUSES],
                                    done=[r for r in items if r.status not in requests.OPEN_STATUSES],
                                    handling_days=requests.handling_days)

    @expose("/nouvelle", methods=["GET", "POST"])
    @has_access
    def new(self):
        household = household_or_404()
        form = NewRequestForm()
        form.category.choices = [("", _("Choisissez..."))] + [
            (c.name, f"{c.kind.label} - {c.label}") for c in requests.TENANT_CATEGORIES]
        if form.validate_on_submit():
            try:
                created = requests.submit(household, requests.NewRequest(
                    category=RequestCategory[form.category.data], subject=form.subject.data,
                    description=form.description.data, common_areas=form.common_areas.data,
                    availability=form.availability.data or "", presence_needed=form.presence_needed.data,
                    pets=form.pets.data), checked_files(form.attachments.data), utcnow(), current_user.id)
            except uploads.UploadError as error:
                show_field_error(form, "attachments", str(error))
            except (RequestError, KeyError) as error:
                show_field_error(form, getattr(error, "field", "category"), getattr(error, "message", str(error)))
            else:
                flash(_("Votre demande %(number)s est envoyée à votre agence. Délai de traitement indicatif : "
                        "%(days)s jours ouvrés.", number=created.number,
                        days=requests.handling_days(created.category)), "success")
                return redirect(url_for("TenantRequestsView.detail", request_id=created.id))
        return self.render_template("tenant/request_new.html", form=form,
                                    handling=[(c, requests.handling_days(c)) for c in requests.TENANT_CATEGORIES]), \
            400 if form.errors or form.form_errors else 200

    def _detail(self, request_, status=200, **forms):
        now = utcnow()
        return self.render_template(
            "tenant/request_detail.html", item=request_, events=requests.timeline(request_, internal=False),
            add_form=forms.get("add") or AddInformationForm(formdata=None, prefix="add"),
            rate_form=forms.get("rate") or RateForm(formdata=None, prefix="rate"),
            reopen_form=forms.get("reopen") or ReopenForm(formdata=None, prefix="reopen"),
            can_reopen=requests.can_reopen(request_, now), days=requests.handling_days(request_.category)), status

    @expose("/<int:request_id>")
    @has_access
    def detail(self, request_id):
        return self._detail(get_for_household(TenantRequest, request_id, household_or_404()))

    @expose("/<int:request_id>/complement", methods=["POST"])
    @has_access
    def add_information(self, request_id):
        request_ = get_for_household(TenantRequest, request_id, household_or_404())
        form = AddInformationForm(prefix="add")
        if form.validate_on_submit():
            try:
                requests.add_information(request_, form.body.data or "", checked_files(form.attachments.data),
                                         utcnow(), current_user.id)
            except uploads.UploadError as error:
                show_field_error(form, "attachments", str(error))
            except RequestError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Votre complément d'information est envoyé à votre agence."), "success")
                return redirect(url_for("TenantRequestsView.detail", request_id=request_id))
        return self._detail(request_, 400, add=form)

    @expose("/<int:request_id>/avis", methods=["POST"])
    @has_access
    def rate(self, request_id):
        request_ = get_for_household(TenantRequest, request_id, household_or_404())
        form = RateForm(prefix="rate")
        if form.validate_on_submit():
            try:
                requests.rate(request_, int(form.rating.data), utcnow())
            except RequestError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Merci pour votre avis."), "success")
                return redirect(url_for("TenantRequestsView.detail", request_id=request_id))
        return self._detail(request_, 400, rate=form)

    @expose("/<int:request_id>/reouvrir", methods=["POST"])
    @has_access
    def reopen(self, request_id):
        request_ = get_for_household(TenantRequest, request_id, household_or_404())
        form = ReopenForm(prefix="reopen")
        if form.validate_on_submit():
            try:
                requests.reopen(request_, form.reason.data, utcnow(), current_user.id)
            except RequestError as error:
                show_field_error(form, error.field, error.message)
            else:
                flash(_("Votre demande est réouverte. Votre agence reprend son traitement."), "success")
                return redirect(url_for("TenantRequestsView.detail", request_id=request_id))
        return self._detail(request_, 400, reopen=form)

    @expose("/piece/<int:attachment_id>")
    @has_access
    def attachment(self, attachment_id):
        attachment = requests.attachment_for_household(attachment_id, current_household())
        key = uploads.key_of(attachment)
        if key is None:
            abort(404)
        return filestore.attachment(key, attachment.content_type, attachment.original_filename)


class CertificateCheckView(BaseView):
    """Public: anyone holding a certificate's code sees the holder's name, the date and the status, nothing else."""

    route_base = "/verifier"
    default_view = "check"

    @expose("/")
    def check(self):
        form = CertificateCheckForm(request.args)
        certificate = None
        searched = "code" in request.args
        if searched and form.validate():
            certificate = documents.find_certificate(form.code.data)
        return self.render_template("public/check_certificate.html", form=form, certificate=certificate,
                                    searched=searched)
