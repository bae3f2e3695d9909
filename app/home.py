"""The portal's front door: `/` sends each role where it works."""

from __future__ import annotations

from datetime import date

from flask import redirect, url_for
from flask_appbuilder import IndexView, expose
from flask_login import current_user

from app.security import current_household, is_staff
from app.services import accounts, ledger


class HomeIndexView(IndexView):
    index_template = "tenant/home.html"

    @expose("/")
    def index(self):
        if not current_user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_login)
        if is_staff():
            return redirect(url_for("StaffHouseholdView.list"))
        household = current_household()
        if household is None:
            return redirect(self.appbuilder.get_url_for_logout)
        today = date.today()
        return self.render_template(
            self.index_template,
            household=household,
            today=today,
            balance=ledger.household_balance(household.id),
            overdue=ledger.household_overdue(household.id, today),
            deactivation=accounts.deactivation_date(household),
        )
