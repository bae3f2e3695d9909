"""Encryption of secrets at rest (the tenant's IBAN, the direct-debit draft, the stored files: app.filestore) with
Fernet from `cryptography`.

Keys come from DATA_ENCRYPTION_KEYS, a comma-separated list of Fernet keys: the first encrypts, every one
decrypts (MultiFernet). Rotation: put a new key first, keep the old ones after it, run
`flask --app run rotate-encryption-key`, then remove the old keys. Development and tests use a key derived from a
public value (config.DEV_DATA_ENCRYPTION_KEY), which production refuses.
"""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from config import ConfigError, encryption_keys_problem, split_encryption_keys


class DecryptionError(RuntimeError):
    """A stored value does not decrypt with any key of DATA_ENCRYPTION_KEYS (a removed key, a wrong key)."""


@lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    fernets = [Fernet(key) for key in keys]
    return MultiFernet(fernets), fernets[0]


def keyring(keys_text: str | None = None) -> tuple[MultiFernet, Fernet]:
    """(every key, the encrypting key) of `keys_text`, by default the app's DATA_ENCRYPTION_KEYS."""
    if keys_text is None:
        keys_text = current_app.config.get("DATA_ENCRYPTION_KEYS") or ""
    problem = encryption_keys_problem(keys_text)
    if problem:
        raise ConfigError(f"DATA_ENCRYPTION_KEYS {problem}")
    return _keyring(tuple(split_encryption_keys(keys_text)))


_UNREADABLE = "a stored value does not decrypt with any key of DATA_ENCRYPTION_KEYS"


def encrypt_bytes(data: bytes) -> bytes:
    return keyring()[0].encrypt(data)


def decrypt_bytes(token: bytes, ttl: int | None = None) -> bytes:
    """The clear content of `token`; DecryptionError if no key opens it (or, with `ttl`, if it is older)."""
    try:
        return keyring()[0].decrypt(token, ttl=ttl)
    except InvalidToken:
        raise DecryptionError(_UNREADABLE) from None


def is_current_bytes(token: bytes) -> bool:
    """Whether `token` is encrypted with the first key already (nothing for a rotation to do)."""
    try:
        keyring()[1].decrypt(token)
    except InvalidToken:
        return False
    return True


def rotate_bytes(token: bytes) -> bytes:
    """`token` encrypted again with the first key (its original timestamp is kept)."""
    try:
        return keyring()[0].rotate(token)
    except InvalidToken:
        raise DecryptionError(_UNREADABLE) from None


def encrypt(text: str) -> str:
    return encrypt_bytes(text.encode("utf-8")).decode("ascii")


def decrypt(token: str, ttl: int | None = None) -> str:
    try:
        return decrypt_bytes(token.encode("ascii"), ttl=ttl).decode("utf-8")
    except UnicodeError:
        raise DecryptionError(_UNREADABLE) from None


def is_current(token: str) -> bool:
    try:
        return is_current_bytes(token.encode("ascii"))
    except UnicodeError:
        return False


def rotate(token: str) -> str:
    try:
        return rotate_bytes(token.encode("ascii")).decode("ascii")
    except UnicodeError:
        raise DecryptionError(_UNREADABLE) from None


def encrypt_json(value) -> str:
    """`value` (anything JSON can hold) as one token, for a secret that has to travel in the session cookie."""
    return encrypt(json.dumps(value, separators=(",", ":")))


def decrypt_json(token, ttl: int | None = None):
    """What `encrypt_json` sealed, or None when `token` is not such a token, opens with no key, or is older than
    `ttl` seconds."""
    if not isinstance(token, str):
        return None
    try:
        return json.loads(decrypt(token, ttl=ttl))
    except (DecryptionError, ValueError):
        return None
