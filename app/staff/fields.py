"""Form fields for the staff screens."""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import StopValidation

from app.extensions import db


class EnumSelectField(SelectField):
    """A select of a `LabelledEnum`, with labels translated for each request."""

    def __init__(self, enum_class, label=None, validators=None, **kwargs):
        self.enum_class = enum_class
        super().__init__(
            label,
            validators,
            choices=lambda: [(member.name, str(member.label)) for member in enum_class],
            coerce=self._coerce,
            **kwargs,
        )

    def _coerce(self, value):
        if value is None or value == "" or isinstance(value, self.enum_class):
            return value or None
        try:
            return self.enum_class[value]
        except KeyError:
            raise ValueError(value) from None


class NaturalKeyField(StringField):
    """A related object typed by its business key (client number, unit reference) instead of a select that
    would list every row of a large table."""

    def __init__(self, model, key_column: str, label=None, validators=None, not_found=None, **kwargs):
        self.model = model
        self.key_column = key_column
        self.not_found = not_found or _l("Aucun enregistrement ne correspond à cette référence.")
        super().__init__(label, validators, **kwargs)

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return getattr(self.data, self.key_column, "") if self.data is not None else ""

    def process_formdata(self, valuelist):
        self.raw_data = valuelist
        key = (valuelist[0] if valuelist else "").strip()
        column = getattr(self.model, self.key_column)
        self.data = db.session.scalar(sa.select(self.model).where(column == key)) if key else None
        self._unknown_key = bool(key) and self.data is None

    def pre_validate(self, form):
        if getattr(self, "_unknown_key", False):
            raise StopValidation(str(self.not_found))
