"""The portal's front door: `/` sends each role where it works; for a tenant it is the « Accueil » page."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import redirect, session, url_for
from flask_appbuilder import IndexView, expose
from flask_login import current_user, logout_user

from app.extensions import db
from app.models import Document, LedgerEntry
from app.security import current_household, is_staff
from app.services import accounts, insurance, ledger, requests

RECENT = 3


class HomeIndexView(IndexView):
    index_template = "tenant/home.html"

    @expose("/")
    def index(self):
        if not current_user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_login)
        if is_staff():
            return redirect(url_for("StaffHomeView.index"))
        household = current_household()
        if household is None:  # an account left without a household (closed lease): signed out
            logout_user()
            session.clear()
            return redirect(self.appbuilder.get_url_for_login)
        today = date.today()
        all_requests = requests.household_requests(household.id)
        insurance_state, certificate = insurance.status(household, today)
        payments = db.session.scalars(sa.select(LedgerEntry).where(
            LedgerEntry.household_id == household.id, LedgerEntry.kind.in_(ledger.TENANT_PAYMENT_KINDS))
            .order_by(LedgerEntry.entry_date.desc(), LedgerEntry.id.desc()).limit(RECENT)).all()
        latest_documents = db.session.scalars(sa.select(Document).where(Document.household_id == household.id)
                                              .order_by(Document.created_at.desc()).limit(RECENT)).all()
        return self.render_template(
            self.index_template, household=household, today=today,
            balance=ledger.household_balance(household.id),
            overdue=ledger.household_overdue(household.id, today),
            deactivation=accounts.deactivation_date(household),
            pending=[r for r in all_requests if r.status in requests.OPEN_STATUSES],
            request_count=len(all_requests), payments=payments, latest_documents=latest_documents,
            insurance=insurance_state, certificate=certificate,
        )
