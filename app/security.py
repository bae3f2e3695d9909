"""Who the current user is, and the household scope: the one place that decides which rows a user may see.

- `current_household()` resolves the signed-in tenant's household (None for staff and anonymous users).
- `staff_agency_ids()` names the agencies whose households a staff member sees (None: every agency, for
  administrators and the landlord-wide role `StaffLandlord`); `household_condition(model)` turns it into a
  condition on any model with a `household_id` (or on Household itself).
- `HouseholdScopeFilter` scopes a query: staff to their agencies' rows, a tenant to its own rows, anyone else to
  nothing. `AgencyScopeFilter` does the staff half for the staff screens.
- `HouseholdScopedModelView` applies it to list/show/edit/delete and drops the routes Flask-AppBuilder does not
  filter (`action`, `action_post`, `download`).
- `get_for_household(Model, id, household)` is how services fetch an object named by a request; another
  household's object is a 404, exactly like a missing one.
"""

from __future__ import annotations

from typing import TypeVar

import sqlalchemy as sa
from flask import abort, current_app, g
from flask_appbuilder import ModelView
from flask_appbuilder.hooks import before_request
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_login import current_user

from app import roles
from app.extensions import db
from app.models import Household, RequestEvent, StaffAgency, TenantAccount, TenantRequest

T = TypeVar("T")

_NOT_RESOLVED = object()


def user_role_names(user=None) -> set[str]:
    user = user if user is not None else current_user
    if not getattr(user, "is_authenticated", False):
        return set()
    return {role.name for role in user.roles}


def is_staff(user=None) -> bool:
    return bool(user_role_names(user) & roles.STAFF_ROLES)


def is_tenant(user=None) -> bool:
    return roles.TENANT in user_role_names(user) and not is_staff(user)


def current_household() -> Household | None:
    """The household of the signed-in tenant, resolved once per request."""
    cached = g.get("_current_household", _NOT_RESOLVED)
    if cached is not _NOT_RESOLVED:
        return cached
    household = None
    if is_tenant():
        household = db.session.scalar(
            sa.select(Household).join(TenantAccount).where(TenantAccount.user_id == current_user.id)
        )
    g._current_household = household
    return household


def staff_agency_ids(user=None) -> frozenset[int] | None:
    """The agencies whose households the staff member sees and acts on: None for every agency (administrators and
    `StaffLandlord`), else the agencies they are attached to (none at all: nothing). Resolved once per request."""
    user = user if user is not None else current_user
    if not getattr(user, "is_authenticated", False):
        return frozenset()  # nobody signed in: no agency
    if user_role_names(user) & roles.ALL_AGENCIES_ROLES:
        return None
    if user is current_user and "_staff_agencies" in g:
        return g._staff_agencies
    ids = frozenset(db.session.scalars(sa.select(StaffAgency.agency_id).where(StaffAgency.user_id == user.id)))
    if user is current_user:
        g._staff_agencies = ids
    return ids


def household_condition(model, agency_ids: frozenset[int] | None = ...) -> sa.ColumnElement | None:
    """The condition that keeps the rows of `model` within the staff member's agencies (None: no limit, or not
    household data)."""
    agency_ids = staff_agency_ids() if agency_ids is ... else agency_ids
    if agency_ids is None:
        return None
    if model is Household:
        return Household.agency_id.in_(agency_ids)
    households = sa.select(Household.id).where(Household.agency_id.in_(agency_ids))
    if hasattr(model, "household_id"):
        return model.household_id.in_(households)
    if model is RequestEvent:  # a request's steps (internal notes included) belong to its household
        requests_ = sa.select(TenantRequest.id).where(TenantRequest.household_id.in_(households))
        return RequestEvent.request_id.in_(requests_)
    return None


def scope_to_household(query, model, household: Household | None, staff: bool):
    """Restrict a query on `model` (household data) to what the user may see."""
    if staff:
        condition = household_condition(model)
        return query if condition is None else query.filter(condition)
    if household is None:
        return query.filter(sa.false())
    return query.filter(model.household_id == household.id)


class HouseholdScopeFilter(BaseFilter):
    """Flask-AppBuilder filter evaluated on every request (not at start-up, unlike `FilterEqual`)."""

    name = "Household scope"
    arg_name = "household_scope"

    def apply(self, query, value):
        return scope_to_household(query, self.model, current_household(), is_staff())


class AgencyScopeFilter(BaseFilter):
    """The staff screens' base filter: a staff member of an agency sees its households' rows only."""

    name = "Agency scope"
    arg_name = "agency_scope"

    def apply(self, query, value):
        return scope_to_household(query, self.model, None, staff=True)


def get_in_scope(model: type[T], object_id) -> T:
    """Fetch `model` by id for a staff member: a row of another agency's household is a 404, like a missing one."""
    condition = household_condition(model)
    query = sa.select(model).where(model.id == object_id)  # type: ignore[attr-defined]
    obj = db.session.scalar(query if condition is None else query.where(condition))
    if obj is None:
        abort(404)
    return obj


def require_all_agencies() -> None:
    """Landlord-wide operations (bank files, accounting, jobs) are refused to a staff member of one agency."""
    if staff_agency_ids() is not None:
        abort(403)


class LandlordWideMixin:
    """For a view of landlord-wide operations (bank files, bank answers, accounting, reconciliation, jobs): a staff
    member of one agency gets a 403 on every route."""

    @before_request
    def refuse_agency_staff(self):
        require_all_agencies()


class HouseholdScopedModelView(ModelView):
    """Base of every tenant-facing model view."""

    base_filters = [["household_id", HouseholdScopeFilter, lambda: None]]
    # These routes are not covered by base_filters (DESIGN.md section 4, fact 1).
    exclude_route_methods = {"action", "action_post", "download"}


def get_for_household(model: type[T], object_id, household: Household | None) -> T:
    """Fetch `model` by id within `household`; anything else, including another household's row, is a 404."""
    try:
        object_id = int(object_id)
    except (TypeError, ValueError):
        abort(404)
    if household is None:
        abort(404)
    obj = db.session.scalar(
        sa.select(model).where(model.id == object_id, model.household_id == household.id)  # type: ignore[attr-defined]
    )
    if obj is None:
        abort(404)
    return obj


class DisabledSecurityApi(SecurityApi):
    """Flask-AppBuilder's JSON login (`/api/v1/security/login`) bypasses the HTML form's throttling
    (DESIGN.md section 4, fact 4). Nobody needs it here, so its routes are not registered at all."""

    exclude_route_methods = {"login", "refresh"}


def sign_in_failed(response) -> bool:
    """Whether a POST to the sign-in view counts toward its per-address limit: it does unless it redirected (a
    right password, a right code, a logout) or was itself refused by the limit (429, nothing was checked)."""
    return not (300 <= response.status_code < 400 or response.status_code == 429)


class PortalSecurityManager(SecurityManager):
    """Flask-AppBuilder's security manager, with the portal's roles and login page.

    It also ties every sign-in to a server-side session (`UserSession`), for tenants and staff alike: whatever
    view calls Flask-Login's `login_user` (the portal's login page, or any Flask-AppBuilder auth view) opens one,
    and whatever calls `logout_user` (logout, closing, a session that `enforce_session_version` ends) revokes it."""

    security_api = DisabledSecurityApi

    def create_login_manager(self, app):
        from flask_login import user_logged_in, user_logged_out

        login_manager = super().create_login_manager(app)
        real_app = app._get_current_object() if hasattr(app, "_get_current_object") else app
        user_logged_in.connect(start_server_session, sender=real_app)
        user_logged_out.connect(end_server_session, sender=real_app)
        return login_manager

    @property
    def authdbview(self):
        from app.tenant.account_views import PortalAuthDBView

        return PortalAuthDBView

    @property
    def is_auth_limited(self) -> bool:
        """Always False for Flask-AppBuilder, whose limit counts every POST to the sign-in view, successful ones
        included: one address shared by many tenants (a social-services office, a mobile network) would lock them
        all out. `register_views` puts the portal's own limit (AUTH_RATE_LIMITED, AUTH_RATE_LIMIT) instead."""
        return False

    def register_views(self):
        """Flask-AppBuilder's security screens, with the staff screens' argument checks (app.staff.security_views),
        and the per-address limit of the sign-in view that counts failed attempts only."""
        from app.staff.security_views import CHECKED_VIEWS

        for attribute, view in CHECKED_VIEWS.items():
            setattr(self, attribute, view)
        super().register_views()
        if current_app.config["AUTH_RATE_LIMITED"]:
            # Checked before every POST to the view (password, second-factor code, logout), counted after it only
            # when it failed. The per-account lock (app.services.throttle) is separate and unchanged.
            self.limiter.limit(self.auth_rate_limit, methods=["POST"], deduct_when=sign_in_failed)(
                self.auth_view.blueprint)

    def reset_password(self, userid, password):
        """An admin setting a user's password (Flask-AppBuilder's screen) also ends that user's sessions."""
        from app.models import utcnow
        from app.services.accounts import bump_session_version

        super().reset_password(userid, password)
        bump_session_version(userid, utcnow(), password_changed=True)
        db.session.commit()

    def sync_roles_and_permissions(self) -> None:
        """Create the roles and one permission row per view and menu (run after each migration)."""
        for name in (roles.ADMIN, roles.STAFF, roles.STAFF_LANDLORD, roles.TENANT, roles.PUBLIC):
            self.add_role(name)
        self.appbuilder.add_permissions(update_perms=True)
        db.session.commit()


SESSION_ID_KEY = "_sid"  # the session cookie's random id of its `UserSession` row (the table keeps its SHA-256)
SESSION_VERSION_KEY = "_sv"  # the user's session version at sign-in (app.services.accounts.session_version)


def start_server_session(sender, user, **extra) -> None:
    """Flask-Login's `user_logged_in`: the session gets a fresh server-side record and the user's session version.
    The login view has already emptied the session (no fixation)."""
    from flask import session

    from app.models import utcnow
    from app.services.accounts import open_session, session_version

    session[SESSION_ID_KEY] = open_session(user.id, utcnow())
    session[SESSION_VERSION_KEY] = session_version(user.id)
    session.permanent = True


def end_server_session(sender, user, **extra) -> None:
    """Flask-Login's `user_logged_out`: revoke the server-side record, so the cookie is worth nothing anywhere."""
    from flask import session

    from app.models import utcnow
    from app.services.accounts import revoke_session

    revoke_session(session.pop(SESSION_ID_KEY, None), utcnow())


def enforce_session_version():
    """End a session that must not go on, checked on every request (two indexed reads; one write a minute):
    - its version is older than the user's (password changed or reset, account closed or deactivated);
    - the user is disabled;
    - its server-side record is missing, revoked (logout), idle for longer than PERMANENT_SESSION_LIFETIME or
      older than SESSION_MAX_LIFETIME, so a copied cookie is worth nothing after logout, and requests that renew
      the cookie cannot keep it alive past the absolute lifetime."""
    from flask import flash, redirect, request, session, url_for
    from flask_babel import lazy_gettext as _l
    from flask_login import logout_user

    from app.models import utcnow
    from app.services.accounts import session_is_live, session_version

    if request.endpoint in ("static", "appbuilder.static", "health.health") or not current_user.is_authenticated:
        return None
    if (session.get(SESSION_VERSION_KEY) != session_version(current_user.id) or not current_user.is_active
            or not session_is_live(session.get(SESSION_ID_KEY), current_user.id, utcnow())):
        logout_user()
        session.clear()
        flash(_l("Votre session a pris fin. Reconnectez-vous."), "info")
        return redirect(url_for("PortalAuthDBView.login"))
    return None
