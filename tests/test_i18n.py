"""Every visible string is translatable; the French catalog is complete; amounts and dates follow the locale."""

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

from babel.messages.pofile import read_po
from flask_babel import force_locale

from app.formatting import day, money

ROOT = Path(__file__).resolve().parent.parent


def _extract(tmp_path) -> Path:
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", "babel.cfg",
                    "-k", "lazy_gettext", "-k", "_l", "-o", str(pot), "."], cwd=ROOT, check=True)
    return pot


def _catalog(path: Path, locale=None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def test_french_catalog_translates_every_extracted_string(tmp_path):
    pot = _catalog(_extract(tmp_path))
    french = _catalog(ROOT / "app/translations/fr/LC_MESSAGES/messages.po", "fr")
    assert len(pot) > 100
    missing = [m.id for m in pot if m.id and (french.get(m.id) is None or not french.get(m.id).string
                                              or french.get(m.id).fuzzy)]
    assert missing == [], f"{len(missing)} strings without French text (run make extract-messages): {missing[:10]}"


def test_english_catalog_is_present_and_filled(tmp_path):
    pot = _catalog(_extract(tmp_path))
    english = _catalog(ROOT / "app/translations/en/LC_MESSAGES/messages.po", "en")
    untranslated = [m.id for m in pot if m.id and (english.get(m.id) is None or not english.get(m.id).string)]
    assert len(untranslated) <= len(pot) // 10, untranslated[:20]


def test_amounts_and_dates_in_french_and_english(app):
    with app.test_request_context():
        with force_locale("fr"):
            assert money(Decimal("1234.56")) == "1\u202f234,56\u00a0€"
            assert day(date(2026, 11, 22), "long") == "22 novembre 2026"
        with force_locale("en"):
            assert money(Decimal("1234.56")) == "€1,234.56"


def test_pages_are_french_by_default_and_english_on_request(app, client_for):
    client = client_for(None)
    page = client.get("/login/").get_data(as_text=True)
    assert 'lang="fr"' in page and "Mot de passe" in page
    client.get("/lang/en")
    page = client.get("/login/").get_data(as_text=True)
    assert 'lang="en"' in page and "Password" in page
