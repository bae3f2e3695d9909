"""Amounts, dates and times for people: Babel formats them for the active locale (`1 234,56 €` in French).

Timestamps are stored in UTC and shown in Europe/Paris (BABEL_DEFAULT_TIMEZONE).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask import Flask
from flask_babel import format_currency, format_date, format_datetime, get_timezone


def money(amount: Decimal | int | float | None) -> str:
    if amount is None:
        return ""
    return format_currency(Decimal(amount), "EUR")


def day(value: date | datetime | None, fmt: str = "short") -> str:
    """A calendar date; an aware timestamp is first moved to the display timezone."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(get_timezone()).date() if value.tzinfo else value.date()
    return format_date(value, fmt)


def moment(value: datetime | None, fmt: str = "short") -> str:
    if value is None:
        return ""
    return format_datetime(value, fmt)


def lease_number(number: str | None) -> str:
    return f"L/{number}" if number else ""


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(money=money, day=day, moment=moment, lease_number=lease_number)
