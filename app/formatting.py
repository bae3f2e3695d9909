"""Amounts, dates and times for people: Babel formats them for the active locale (`1 234,56 €` in French).

Timestamps are stored in UTC and shown in Europe/Paris (BABEL_DEFAULT_TIMEZONE). Spreadsheet cells (CSV exports) get
plain numbers and inert text.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from babel.numbers import get_decimal_symbol
from flask import Flask
from flask_babel import format_currency, format_date, format_datetime, format_decimal, get_locale, get_timezone

DASH = "—"  # an empty value on a screen
CSV_BOM = "\ufeff"  # French Excel reads a CSV as UTF-8 only with it
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CENT = Decimal("0.01")


def money(amount: Decimal | int | float | None) -> str:
    if amount is None:
        return ""
    return format_currency(Decimal(amount), "EUR")


def number(value: Decimal | int | float | None) -> str:
    """A quantity that is not an amount (a surface): grouped digits and the locale's decimal sign."""
    if value is None:
        return ""
    return format_decimal(value)


def day(value: date | datetime | None, fmt: str = "short") -> str:
    """A calendar date; an aware timestamp is first moved to the display timezone."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(get_timezone()).date() if value.tzinfo else value.date()
    return format_date(value, fmt)


def moment(value: datetime | None, fmt: str = "short") -> str:
    """A timestamp in the display timezone (`25/11/2026 20:38` in French); naive means UTC."""
    if value is None:
        return ""
    return format_datetime(value, fmt)


def local_moment(value: datetime | None, fmt: str = "short") -> str:
    """A naive timestamp in the server's local time, as Flask-AppBuilder writes its own (`last_login` is
    `datetime.now()`), in the display timezone."""
    if value is None:
        return ""
    return moment(value.astimezone() if value.tzinfo is None else value, fmt)


def lease_number(number: str | None) -> str:
    return f"L/{number}" if number else ""


def plain_decimal(value: Decimal | int | float, places: int | None = None) -> str:
    """A number as a spreadsheet of the active locale reads it: no grouping, no currency sign, the locale's decimal
    sign (`-1234,56` in French)."""
    value = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    return format(value, "f").replace(".", get_decimal_symbol(get_locale()))


def plain_money(amount: Decimal | int | float) -> str:
    return plain_decimal(amount, places=2)


def spreadsheet_text(cell: str) -> str:
    """A text cell a spreadsheet would run as a formula, made inert with a leading quote (OWASP CSV injection)."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(money=money, day=day, moment=moment, lease_number=lease_number)
