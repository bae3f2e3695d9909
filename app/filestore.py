"""The portal's files under FILES_DIR, encrypted at rest.

Uploaded RIBs, mandate PDFs and pain.008 files carry full IBANs; certificates, quittances and requests' photos carry
names, addresses and more. Every file is written as one Fernet token under the data key (app.crypto,
DATA_ENCRYPTION_KEYS), whole or not at all (written aside, then renamed), and read back with `load`: a copy of the
disk or of a backup shows nothing without the key. A file written before encryption came (in clear) still reads;
`flask rotate-encryption-key` encrypts those and re-encrypts files under an older key (`rotate_all`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from flask import Response, current_app, send_file

from app import crypto

TOKEN_PREFIX = b"gAAAAA"  # every Fernet token: version byte 0x80, then a timestamp whose high bytes are zero
PARTIAL_SUFFIX = ".part"


def save(path: Path, data: bytes) -> None:
    """Write `data` encrypted at `path`; the file appears whole or not at all."""
    _write_whole(path, crypto.encrypt_bytes(data))


def load(path: Path) -> bytes:
    """The clear content of a stored file (DecryptionError if no key of DATA_ENCRYPTION_KEYS opens it)."""
    raw = path.read_bytes()
    return crypto.decrypt_bytes(raw) if raw.startswith(TOKEN_PREFIX) else raw


def attachment(path: Path, mimetype: str, filename: str) -> Response:
    """A stored file as a download: an attachment (never rendered by the browser), never cached."""
    response = send_file(io.BytesIO(load(path)), mimetype=mimetype, as_attachment=True, download_name=filename)
    response.headers["Cache-Control"] = "no-store"
    return response


def rotate_all() -> tuple[int, int, int]:
    """Encrypt the files still in clear and re-encrypt those under an older key, one file at a time (each replaced
    whole). Returns (files seen, encrypted from clear, re-encrypted)."""
    seen = encrypted = rotated = 0
    root = Path(current_app.config["FILES_DIR"])
    for path in sorted(root.rglob("*")) if root.is_dir() else ():
        if not path.is_file() or path.name.endswith(PARTIAL_SUFFIX):
            continue
        seen += 1
        raw = path.read_bytes()
        if not raw.startswith(TOKEN_PREFIX):
            save(path, raw)
            encrypted += 1
        elif not crypto.is_current_bytes(raw):
            _write_whole(path, crypto.rotate_bytes(raw))
            rotated += 1
    return seen, encrypted, rotated


def _write_whole(path: Path, raw: bytes) -> None:
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    try:
        partial.write_bytes(raw)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
