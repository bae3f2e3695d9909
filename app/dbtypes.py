"""Column types shared by the models and the migrations (kept apart so migrations never import the models)."""

from datetime import timezone

import sqlalchemy as sa

from app import crypto


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware UTC datetime on every database (SQLite drops the offset, so it is put back on read)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class EncryptedString(sa.TypeDecorator):
    """A string stored encrypted with the app's DATA_ENCRYPTION_KEYS (app.crypto): Python code reads and writes
    the clear value; the database, its backups and raw SQL only see a Fernet token. Each write uses a fresh IV,
    so SQL cannot search, compare or sort on the value. `length` is the stored width: a Fernet token of n bytes
    of clear text takes 4 * ceil((57 + 16 * (n // 16 + 1)) / 3) characters (140 for a 34-character IBAN)."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        token = crypto.encrypt(value)
        if self.impl.length and len(token) > self.impl.length:  # SQLite would store it anyway
            raise ValueError(f"value too long for an encrypted column of {self.impl.length} characters")
        return token

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return crypto.decrypt(value)
