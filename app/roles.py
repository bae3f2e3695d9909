"""Role names and what each role may reach.

Flask-AppBuilder checks built-in roles (`FAB_ROLES`) by regular expression on (view, permission) at request time,
so the rules live here in code, reviewed like code, instead of in rows an admin could drift. Staff views are named
`Staff*` and tenant views `Tenant*` (views and menu items alike), which is what the patterns rely on.
"""

ADMIN = "Admin"
STAFF = "Staff"  # a chargé de clientèle: the households of the agencies they are attached to (StaffAgency)
STAFF_LANDLORD = "StaffLandlord"  # headquarters staff: every agency, and the landlord-wide operations
TENANT = "Tenant"
PUBLIC = "Public"

STAFF_PREFIX = "Staff"
TENANT_PREFIX = "Tenant"

# Flask-AppBuilder's own pages a signed-in staff member needs (own profile). Its "reset my password" page is
# not granted: it does not ask for the current password (DESIGN.md section 4, fact 6).
_OWN_ACCOUNT = [
    [r"UserInfoEditView$", r"can_this_form_(get|post)$"],
    [r"UserDBModelView$", r"can_userinfo$"],
]

FAB_ROLES = {
    ADMIN: [[r".*", r".*"]],
    STAFF: [[rf"{STAFF_PREFIX}.*", r".*"], *_OWN_ACCOUNT],
    STAFF_LANDLORD: [[rf"{STAFF_PREFIX}.*", r".*"], *_OWN_ACCOUNT],
    TENANT: [[rf"{TENANT_PREFIX}.*", r".*"]],
}

STAFF_ROLES = frozenset({ADMIN, STAFF, STAFF_LANDLORD})
# Roles that see every agency's households; a STAFF member sees those of their agencies only (app.security).
ALL_AGENCIES_ROLES = frozenset({ADMIN, STAFF_LANDLORD})
