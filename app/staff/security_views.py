"""Flask-AppBuilder's own security screens (users, roles, groups, permissions, view-menus), with the same checks as
the staff screens: junk in ids, paging, ordering, filters and actions is a 4xx in the portal's layout, never a 500.

Each class keeps Flask-AppBuilder's name, so its permissions are unchanged. Their `download` route (files of
FileColumns, which these tables do not have) is not registered: it fails on a missing UPLOAD_FOLDER.
"""

from __future__ import annotations

import re

from flask import abort
from flask_appbuilder import expose, has_access
from flask_appbuilder.security import views as fab

from app.staff.views import CheckedArgumentsMixin


def _checked(base: type) -> type:
    return type(base.__name__, (CheckedArgumentsMixin, base), {
        "__module__": __name__, "__doc__": base.__doc__,
        "exclude_route_methods": set(getattr(base, "exclude_route_methods", set())) | {"download"},
    })


class UserDBModelView(CheckedArgumentsMixin, fab.UserDBModelView):
    exclude_route_methods = set(fab.UserDBModelView.exclude_route_methods) | {"download"}

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        """Flask-AppBuilder's own `show` (with the password reset action) reads `pk` as it comes."""
        return super().show(self._deserialize_pk_if_composite(pk))


class UserStatsChartView(fab.UserStatsChartView):
    @expose("/chart/<group_by>")
    @expose("/chart/")
    @has_access
    def chart(self, group_by="0"):
        """`group_by` is the index of a chart definition: anything else is a 404 (int() and the list failed)."""
        if not re.fullmatch(r"[0-9]{1,3}", str(group_by)) or int(group_by) >= len(self.definitions):
            abort(404)
        return super().chart(group_by)


# The security manager's attributes, as Flask-AppBuilder names them (PortalSecurityManager.register_views).
CHECKED_VIEWS = {
    "userdbmodelview": UserDBModelView,
    "rolemodelview": _checked(fab.RoleModelView),
    "groupmodelview": _checked(fab.UserGroupModelView),
    "permissionmodelview": _checked(fab.PermissionModelView),
    "viewmenumodelview": _checked(fab.ViewMenuModelView),
    "permissionviewmodelview": _checked(fab.PermissionViewModelView),
    "userstatschartview": UserStatsChartView,
}
