"""Files sent by tenants (request attachments, insurance certificates): checked by content, capped in size, stored
under a random name outside any static folder. The name the tenant gave is only ever shown, never used as a path.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PdfReadError

MAX_BYTES = 8 * 1024 * 1024
PDF, JPEG, PNG = "pdf", "jpeg", "png"
CONTENT_TYPES = {PDF: "application/pdf", JPEG: "image/jpeg", PNG: "image/png"}
EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png"}


class UploadError(ValueError):
    """A file refused; the message is for the tenant."""


@dataclass
class CheckedFile:
    kind: str
    data: bytes
    original_filename: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]


def _clean_name(name: str | None) -> str:
    """The last path component only, without control characters, for display."""
    base = (name or "").replace("\\", "/").split("/")[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if c.isprintable() and c not in '<>:"|?*')
    return base.strip()[:150] or "fichier"


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    return None


def check(storage, allowed: tuple[str, ...]) -> CheckedFile:
    """Read an uploaded file and make sure it is really one of `allowed` (magic bytes and a real parse)."""
    if storage is None or not getattr(storage, "filename", None):
        raise UploadError(_("Choisissez un fichier."))
    data = storage.read(MAX_BYTES + 1)
    if not data:
        raise UploadError(_("Le fichier est vide."))
    if len(data) > MAX_BYTES:
        raise UploadError(_("Le fichier dépasse 8 Mo. Envoyez un fichier plus léger (une photo en qualité "
                            "normale, par exemple)."))
    kind = _sniff(data)
    if kind not in allowed:
        raise UploadError(_allowed_message(allowed))
    try:
        if kind == PDF:
            pages = len(PdfReader(io.BytesIO(data)).pages)
        else:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
            pages = 1
    except (PdfReadError, UnidentifiedImageError, OSError, ValueError, SyntaxError):
        pages = 0
    if pages < 1:
        raise UploadError(_("Ce fichier est endommagé ou n'est pas ce qu'il prétend être."))
    return CheckedFile(kind, data, _clean_name(storage.filename))


def _allowed_message(allowed: tuple[str, ...]) -> str:
    if allowed == (PDF,):
        return _("Seuls les fichiers PDF sont acceptés.")
    return _("Seules les photos (JPEG, PNG) et les fichiers PDF sont acceptés.")


def folder() -> Path:
    path = Path(current_app.config["FILES_DIR"]) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store(checked: CheckedFile, target) -> None:
    """Write the file under a random name and describe it on `target` (a StoredFileMixin row)."""
    name = secrets.token_hex(16) + EXTENSIONS[checked.kind]
    (folder() / name).write_bytes(checked.data)
    target.stored_name = name
    target.original_filename = checked.original_filename
    target.content_type = checked.content_type
    target.size_bytes = len(checked.data)
    target.sha256 = hashlib.sha256(checked.data).hexdigest()


def path_of(target) -> Path | None:
    if not target.stored_name:
        return None
    path = folder() / target.stored_name
    return path if path.is_file() else None
