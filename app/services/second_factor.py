"""A second factor for staff and admin sign-ins: a 6-digit code from an authenticator app (TOTP, RFC 6238, with
pyotp), every 30 seconds.

- Turning it on: `start` makes a secret (kept encrypted, `SecondFactor.secret`) and the page shows it as a QR code
  (segno, inline SVG) and as text; `confirm` checks a first code before the factor counts.
- Signing in: after the password, `verify` checks the code (the step before and after are accepted for clock drift),
  each code once (`last_step`), failures throttled per account like passwords.
- `STAFF_SECOND_FACTOR_REQUIRED` (configuration) makes it mandatory for staff and administrators: until they have
  one, every staff page sends them to the page that turns it on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pyotp
import segno
import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from app.extensions import db
from app.models import SecondFactor
from app.services import throttle

ISSUER = "Espace locataire"
LIMIT, WINDOW, LOCK = 5, timedelta(minutes=15), timedelta(minutes=15)


class SecondFactorError(Exception):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def factor_of(user_id: int) -> SecondFactor | None:
    return db.session.scalar(sa.select(SecondFactor).where(SecondFactor.user_id == user_id))


def is_on(user_id: int) -> bool:
    factor = factor_of(user_id)
    return factor is not None and factor.confirmed_at is not None


def required() -> bool:
    return bool(current_app.config.get("STAFF_SECOND_FACTOR_REQUIRED"))


def start(user, now: datetime) -> SecondFactor:
    """A new secret, not yet confirmed (replacing one never confirmed)."""
    factor = factor_of(user.id)
    if factor is not None and factor.confirmed_at is not None:
        raise SecondFactorError(_l("La double authentification est déjà active."))
    if factor is None:
        factor = SecondFactor(user_id=user.id, secret=pyotp.random_base32(), created_at=now)
        db.session.add(factor)
    else:
        factor.secret, factor.created_at, factor.last_step = pyotp.random_base32(), now, None
    db.session.commit()
    return factor


def provisioning_uri(factor: SecondFactor, email: str) -> str:
    return pyotp.TOTP(factor.secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> Markup:
    """The QR code of `uri` as inline SVG (no image request, nothing for the CSP to allow)."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, title=str(_l("Code QR à scanner")), border=2)
    return Markup(svg)  # noqa: S704 - segno writes the SVG from the URI's bits, nothing of the user's markup


def _accepted_step(factor: SecondFactor, code: str, now: datetime) -> int | None:
    code = "".join((code or "").split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(factor.secret)
    for offset in (0, -1, 1):  # the phone's clock may be 30 seconds off either way
        moment = now + timedelta(seconds=30 * offset)
        step = totp.timecode(moment)
        if totp.verify(code, for_time=moment, valid_window=0) and (factor.last_step is None or step > factor.last_step):
            return step
    return None


def confirm(user, code: str, now: datetime) -> None:
    factor = factor_of(user.id)
    if factor is None or factor.confirmed_at is not None:
        raise SecondFactorError(_l("Recommencez : demandez un nouveau code QR."))
    step = _accepted_step(factor, code, now)
    if step is None:
        raise SecondFactorError(_l("Ce code ne correspond pas. Vérifiez l'heure du téléphone et tapez le code "
                                   "affiché maintenant."))
    factor.confirmed_at, factor.last_step = now, step
    db.session.commit()


def verify(user_id: int, code: str, now: datetime) -> None:
    """Check a sign-in code; SecondFactorError with a message otherwise (after LIMIT failures, the account waits)."""
    key = f"totp:{user_id}"
    if throttle.locked_until(key, now):
        raise SecondFactorError(_l("Trop de codes erronés. Attendez un quart d'heure puis réessayez."))
    factor = factor_of(user_id)
    step = _accepted_step(factor, code, now) if factor is not None and factor.confirmed_at else None
    if step is None:
        throttle.record_failure(key, now, LIMIT, WINDOW, LOCK)
        db.session.commit()
        raise SecondFactorError(_l("Ce code ne correspond pas, ou il a déjà servi. Tapez le code affiché maintenant."))
    factor.last_step = step
    throttle.clear(key)
    db.session.commit()


def turn_off(user, code: str, now: datetime) -> None:
    """Only with a valid code: a stolen session cannot remove the factor."""
    verify(user.id, code, now)
    db.session.execute(sa.delete(SecondFactor).where(SecondFactor.user_id == user.id))
    db.session.commit()
