"""Extension objects, created once and bound to each app by `create_app()`."""

from flask_appbuilder import Model
from flask_appbuilder.models.sqla.base import SQLA
from flask_migrate import Migrate

# Flask-AppBuilder's declarative base, so our tables and its security tables share one metadata (one migration
# history).
db = SQLA(model_class=Model)
migrate = Migrate()
