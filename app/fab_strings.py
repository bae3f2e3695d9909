"""Flask-AppBuilder's own strings that read badly in French: listed here so they are extracted into our catalog,
which Flask-Babel merges over Flask-AppBuilder's."""

from flask_babel import lazy_gettext as _l

FAB_OVERRIDES = [
    _l("Record Count"),
    _l("Access is Denied"),
    _l("Invalid login. Please try again."),
]
