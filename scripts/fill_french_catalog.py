"""Our source strings are written in French: fill every empty French msgstr with its msgid.

Run after `make extract-messages`; entries that already have a French text (overrides of Flask-AppBuilder's own
strings, for instance) are kept.
"""

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

path = Path(sys.argv[1] if len(sys.argv) > 1 else "app/translations/fr/LC_MESSAGES/messages.po")
with path.open("rb") as handle:
    catalog = read_po(handle, locale="fr")
filled = 0
for message in catalog:
    if not message.id:
        continue
    if message.fuzzy or not message.string or (isinstance(message.string, tuple) and not all(message.string)):
        message.flags.discard("fuzzy")
        message.string = message.id
        filled += 1
with path.open("wb") as handle:
    write_po(handle, catalog, width=120)
print(f"{filled} French entries filled in {path}")
