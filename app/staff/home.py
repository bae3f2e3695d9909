"""The staff home page: each work queue with what waits, what is past its promise and the oldest wait, per agency."""

from __future__ import annotations

from flask_appbuilder import BaseView, expose, has_access
from flask_babel import lazy_gettext as _l

from app.models import utcnow
from app.security import staff_agency_ids
from app.services import queues


class StaffHomeView(BaseView):
    route_base = "/agence"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        now = utcnow()
        counts, agencies = queues.overview(now, staff_agency_ids())  # a staff member of an agency: theirs
        return self.render_template("staff/home.html", queues=counts, agencies=agencies, now=now,
                                    title=_l("Files de travail"))
