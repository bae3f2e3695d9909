"""Staff page « Export comptable »: pick two dates, download the accounting CSV (app.services.accounting)."""

from __future__ import annotations

from flask import Response, request, stream_with_context
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField

from app.models import utcnow
from app.services import accounting
from app.security import LandlordWideMixin
from app.tenant.pages import show_field_error

FIELDS = {"start": "du", "end": "au"}  # service field -> form field


class ExportForm(FlaskForm):
    class Meta:
        csrf = False  # a GET form that only reads

    du = DateField(_l("Date de début"), description=_l("Premier jour exporté, inclus."))
    au = DateField(_l("Date de fin"), description=_l("Dernier jour exporté, inclus (%(days)s jours au plus).",
                                                     days=accounting.MAX_DAYS))


class StaffAccountingExportView(LandlordWideMixin, BaseView):
    """The accountants' CSV of card payments, direct debits, reversals and rejects, by date of movement."""

    route_base = "/agence/export-comptable"
    default_view = "index"

    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        if "du" not in request.args and "au" not in request.args:
            start, end = accounting.previous_month(utcnow().date())
            form = ExportForm(formdata=None, du=start, au=end)
            return self.render_template("staff/accounting_export.html", form=form)
        form = ExportForm(formdata=None)
        form.du.raw_data, form.au.raw_data = [request.args.get("du", "")], [request.args.get("au", "")]
        try:
            start, end = accounting.parse_range(request.args.get("du"), request.args.get("au"))
        except accounting.AccountingError as error:
            show_field_error(form, FIELDS[error.field], error.message)
            return self.render_template("staff/accounting_export.html", form=form), 400
        response = Response(stream_with_context(accounting.csv_chunks(start, end)),
                            content_type="text/csv; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="{accounting.filename(start, end)}"'
        response.headers["Cache-Control"] = "no-store"
        return response
