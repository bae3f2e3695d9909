"""Form fields and search filters for the staff screens."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from dateutil import parser as dateutil_parser
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import format_decimal, get_timezone
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import StopValidation

from app.extensions import db
from app.security import household_condition
from app.money import parse_money


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
        query = sa.select(self.model).where(column == key)
        scope = household_condition(self.model)  # another agency's household is as unknown as a missing one
        self.data = db.session.scalar(query if scope is None else query.where(scope)) if key else None
        self._unknown_key = bool(key) and self.data is None

    def pre_validate(self, form):
        if getattr(self, "_unknown_key", False):
            raise StopValidation(str(self.not_found))


class NumberField(StringField):
    """A decimal number for a `Numeric(precision, scale)` column, typed the French way (`62,5`) or with a point.

    Flask-AppBuilder's own DecimalField takes `Infinity`, `NaN`, `1e13` and `1_000`, which the column cannot hold
    or nobody meant: this field takes digits and one decimal separator only, within the column's size, and says
    what is wrong next to the field otherwise."""

    def __init__(self, label=None, validators=None, precision=12, scale=2, **kwargs):
        self.precision, self.scale = precision, scale
        kwargs.setdefault("render_kw", {"inputmode": "decimal"})
        kwargs.setdefault("widget", BS3TextFieldWidget())
        super().__init__(label, validators, **kwargs)

    def parse(self, text: str) -> Decimal:
        cleaned = re.sub(r"[\s\u00a0\u202f]", "", text)
        if re.fullmatch(r"[+-]?[0-9]+(?:[.,][0-9]+)?", cleaned):
            number, quantum = Decimal(cleaned.replace(",", ".")), Decimal(1).scaleb(-self.scale)
            if abs(number) < Decimal(10) ** (self.precision - self.scale) and number == number.quantize(quantum):
                return (number if number else Decimal(0)).quantize(quantum)
        raise ValueError(_l("Saisissez un nombre d'au plus %(digits)s chiffres avant la virgule et %(places)s "
                            "après, par exemple 62,5.", digits=self.precision - self.scale, places=self.scale))

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        pattern = "0." + "0" * self.scale if self.scale else "0"
        return format_decimal(self.data, format=pattern) if self.data is not None else ""

    def process_formdata(self, valuelist):
        self.raw_data = valuelist
        self._problem = None
        text = (valuelist[0] if valuelist else "").strip()
        try:
            self.data = self.parse(text) if text else None
        except ValueError as error:
            self.data, self._problem = None, str(error)

    def pre_validate(self, form):
        if getattr(self, "_problem", None):
            raise StopValidation(self._problem)


class MoneyField(NumberField):
    """An amount in euros for a money column (`1 234,50 €` is fine): what `app.money.parse_money` accepts."""

    def parse(self, text: str) -> Decimal:
        return parse_money(text)


def read_moment(value: str) -> datetime | None:
    """A date and time typed in a search form, in the portal's time zone (Europe/Paris), as UTC for the columns;
    None for what cannot be read, as Flask-AppBuilder does."""
    try:
        try:  # ISO first (`2026-05-10 14:30`), then the French order (`10/05/2026 14:30` is the 10th of May)
            moment = dateutil_parser.isoparse(value.strip())
        except ValueError:
            moment = dateutil_parser.parse(value, dayfirst=True)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(str(get_timezone())))
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


@functools.cache
def reading_filter(filter_class: type[BaseFilter], read) -> type[BaseFilter]:
    """`filter_class` (one of Flask-AppBuilder's search filters) given the searched value read by `read` first.

    Flask-AppBuilder hands the typed text to SQL for a money column (PostgreSQL refuses `numeric = character
    varying`, even for a valid amount) and a naive datetime to a UTC column (`UTCDateTime` refuses it): both were
    500s. A class rather than a wrapper, because Flask-AppBuilder makes new filters from `flt.__class__`."""

    def __init__(self, column_name, datamodel, is_related_view=False):
        # BaseFilter.__init__ without its registration by `arg_name`, which would make this class Flask-AppBuilder's
        # filter of that name everywhere (its REST API looks filters up there).
        self.column_name, self.datamodel, self.model = column_name, datamodel, datamodel.obj
        self.is_related_view = is_related_view

    def apply(self, query, value):
        if isinstance(value, list):  # "in" and "not in"
            return filter_class.apply(self, query, [read(item) for item in value if item])
        return filter_class.apply(self, query, read(value) if value else None)

    return type(f"Read{filter_class.__name__}", (filter_class,), {"__init__": __init__, "apply": apply,
                                                                   "read": staticmethod(read)})
