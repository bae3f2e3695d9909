"""The password policy, in one place: shown on forms, checked live in the browser and always on the server.

The landlord's rule is at least 8 characters with 2 digits and 1 special character. Following the CNIL
(délibération 2022-100) the portal also requires a letter, refuses very common passwords (zxcvbn's list of the
30,000 most common ones plus a French list) and accepts long passphrases (64 characters or more) whatever their
composition. Failed logins are throttled elsewhere (`app.services.throttle`).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from flask_babel import lazy_gettext as _l

MIN_LENGTH = 8
MAX_LENGTH = 128
PASSPHRASE_LENGTH = 64
MIN_DIGITS = 2

POLICY_TEXT = _l("Au moins 8 caractères, dont 2 chiffres, 1 caractère spécial (par exemple ! ? - _) et 1 lettre. "
                 "Ou une phrase de passe de 64 caractères ou plus. Les mots de passe trop courants sont refusés.")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    french = Path(__file__).resolve().parent.parent / "data" / "common_passwords_fr.txt"
    extra = {line.strip().lower() for line in french.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")}
    return frozenset(FREQUENCY_LISTS["passwords"]) | extra


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def _core(password: str) -> str:
    """The letters of a password: « Azerty12! » and « 12azerty!! » are both built on « azerty »."""
    return re.sub(r"[^a-z]", "", _fold(password))


def password_problems(password: str, personal: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with `password`, as short French sentences (empty when it is acceptable).

    `personal` holds words the password must not be built on (the email's local part, the surname).
    """
    problems: list[str] = []
    if len(password) > MAX_LENGTH:
        return [str(_l("Le mot de passe ne doit pas dépasser 128 caractères."))]
    if len(password) < PASSPHRASE_LENGTH:
        if len(password) < MIN_LENGTH:
            problems.append(str(_l("Le mot de passe doit contenir au moins 8 caractères.")))
        if sum(c.isdigit() for c in password) < MIN_DIGITS:
            problems.append(str(_l("Le mot de passe doit contenir au moins 2 chiffres.")))
        if not any(not c.isalnum() and not c.isspace() for c in password):
            problems.append(str(_l("Le mot de passe doit contenir au moins 1 caractère spécial.")))
        if not any(c.isalpha() for c in password):
            problems.append(str(_l("Le mot de passe doit contenir au moins 1 lettre.")))
    folded, core = _fold(password), _core(password)
    common = common_passwords()
    personal_words = {_core(word) for word in personal if word and len(_core(word)) >= 4}
    too_simple = len(set(folded)) < 5
    if too_simple or folded in common or (len(core) >= 4 and (core in common or core in personal_words)):
        problems.append(str(_l("Ce mot de passe est trop courant ou trop facile à deviner. Choisissez-en un autre.")))
    return problems
