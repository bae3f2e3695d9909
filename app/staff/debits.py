"""Staff desk for the direct-debit files: build the collection file of a debit day after a preview, download it,
and import the bank's answers (pain.002, camt.054, camt.053) instead of typing rejects."""

from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, SelectField
from wtforms.validators import DataRequired

from app.extensions import db
from app.formatting import money
from app.models import BankFileImport, utcnow
from app.services import direct_debits
from app.services.sepa import DEBIT_DAYS, SepaError
from app.security import LandlordWideMixin
from app.tenant.pages import show_field_error


def _months(today: date) -> list[tuple[str, str]]:
    return [(f"{month:%Y-%m}", format_date(month, "MMMM yyyy")) for month in direct_debits.file_months(today)]


class FileChoiceForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form that only previews

    period = SelectField(_l("Mois"))
    day = SelectField(_l("Jour de prélèvement"), choices=[(str(d), str(d)) for d in DEBIT_DAYS])


class BuildForm(FlaskForm):
    period = HiddenField(validators=[DataRequired()])
    day = HiddenField(validators=[DataRequired()])


class BankFileForm(FlaskForm):
    file = FileField(_l("Fichier de la banque (pain.002, camt.054 ou camt.053)"),
                     validators=[DataRequired(message=_l("Choisissez le fichier reçu de la banque."))])


class StaffDebitFileView(LandlordWideMixin, BaseView):
    route_base = "/agence/prelevements"
    default_view = "index"

    @expose("/fichier", methods=["GET"])
    @has_access
    def index(self):
        today = utcnow().date()
        choice = FileChoiceForm(request.args)
        choice.period.choices = _months(today)
        if not choice.validate():
            choice = FileChoiceForm(formdata=None, period=f"{today:%Y-%m}", day=str(DEBIT_DAYS[0]))
            choice.period.choices = _months(today)
        preview = direct_debits.preview(choice.period.data, int(choice.day.data), today)
        build = BuildForm(formdata=None, period=preview.period, day=str(preview.debit_day))
        return self.render_template("staff/debit_file.html", choice=choice, preview=preview, build=build)

    @expose("/fichier", methods=["POST"])
    @has_access
    def build(self):
        form = BuildForm()
        periods = {value for value, _label in _months(utcnow().date())}
        if not form.validate_on_submit() or form.period.data not in periods or \
                form.day.data not in {str(d) for d in DEBIT_DAYS}:
            abort(400)
        try:
            batch = direct_debits.build_file(form.period.data, int(form.day.data), utcnow().date(), utcnow(),
                                             user_id=current_user.id)
        except SepaError as error:
            flash(error.message, "danger")
        else:
            flash(_("Fichier préparé : %(count)s prélèvements, %(total)s, prélevés le %(date)s. Téléchargez-le et "
                    "envoyez-le à la banque.", count=batch.count, total=money(batch.total),
                    date=format_date(batch.collection_date, "d MMMM yyyy")), "success")
        return redirect(url_for("StaffDebitFileView.index", period=form.period.data, day=form.day.data))

    @expose("/retours", methods=["GET", "POST"])
    @has_access
    def bank_answer(self):
        form = BankFileForm()
        if form.validate_on_submit():
            try:  # the size is capped by MAX_CONTENT_LENGTH, and again by the parser
                record = direct_debits.import_bank_answer(form.file.data.read(), form.file.data.filename,
                                                          utcnow().date(), utcnow(), user_id=current_user.id)
            except SepaError as error:
                show_field_error(form, "file", error.message)
            else:
                flash(_("Fichier importé : %(applied)s rejets appliqués, %(review)s lignes à vérifier.",
                        applied=record.applied, review=record.to_review), "success")
                return redirect(url_for("StaffDebitFileView.bank_answer_report", import_id=record.id))
        return self.render_template("staff/bank_answer_form.html", form=form), \
            400 if form.errors or form.form_errors else 200

    @expose("/retours/<int:import_id>")
    @has_access
    def bank_answer_report(self, import_id):
        record = db.session.get(BankFileImport, import_id)
        if record is None:
            abort(404)
        return self.render_template("staff/bank_answer_report.html", record=record)
