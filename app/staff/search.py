"""« Rechercher un foyer »: the one box of the staff menu (app.services.household_search does the finding)."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import lazy_gettext as _l

from app.models import Household
from app.security import household_condition
from app.services import household_search


class StaffSearchView(BaseView):
    route_base = "/agence/recherche"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        """One match opens the household; several make a short list; none, or a query that cannot be one, says so
        next to the box."""
        text = request.args.get("q", "")
        found, error = None, None
        if text.strip():
            try:
                found = household_search.search(text, household_condition(Household))
            except household_search.SearchError as problem:
                error = problem.message
            else:
                if len(found.households) == 1 and not found.more:
                    return redirect(url_for("StaffHouseholdFileView.detail", household_id=found.households[0].id))
        status = 400 if error else 200
        return self.render_template("staff/search.html", query=text[:household_search.MAX_LENGTH], found=found,
                                    error=error, title=_l("Rechercher un foyer")), status
