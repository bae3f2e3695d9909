"""Amounts as the money columns hold them: `Numeric(12, 2)`, so two decimals and at most 9 999 999 999,99 € either
way, and never infinity or NaN (Python's `Decimal` reads `Infinity`, `NaN`, `1e13` and `1_000` without a word).

`parse_money()` reads what a person typed: digits, one decimal separator (comma or point), spaces and a euro sign
allowed, nothing else. The CHECK constraints `ck_<table>_<column>_range` refuse the rest in the database itself.
"""

from __future__ import annotations

import re
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from app.formatting import money

CENT = Decimal("0.01")
MONEY_MAX = Decimal("9999999999.99")  # Numeric(12, 2): ten digits before the point, two after
_AMOUNT_RE = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")
_IGNORED_RE = re.compile(r"[\s\u00a0\u202f€]")


class MoneyError(ValueError):
    """What is wrong with a typed amount, in words fit for the screen."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = str(message)


def parse_money(text: str | None) -> Decimal:
    """The amount in `text`, with two decimals; MoneyError when it is not a finite amount of the columns' size."""
    cleaned = _IGNORED_RE.sub("", text or "")
    if not _AMOUNT_RE.fullmatch(cleaned):
        raise MoneyError(_l("Saisissez un montant en euros, par exemple 125,50."))
    amount = Decimal(cleaned.replace(",", "."))
    check_money(amount)  # first: quantizing a number of more than 28 digits fails
    if amount != amount.quantize(CENT):
        raise MoneyError(_l("Saisissez un montant en euros avec au plus deux chiffres après la virgule."))
    return amount.quantize(CENT) if amount else Decimal("0.00")  # no "-0.00"


def check_money(amount: Decimal) -> None:
    """Raise MoneyError unless `amount` fits a money column (finite, at most MONEY_MAX either way)."""
    if not amount.is_finite() or abs(amount) > MONEY_MAX:
        raise MoneyError(_l("Le montant doit être compris entre %(low)s et %(high)s.",
                            low=money(-MONEY_MAX), high=money(MONEY_MAX)))
