"""Files sent by tenants and staff (request attachments, insurance certificates, the RIB of a direct-debit
subscription): checked by content, capped in size, stored under a random name outside any static folder. The name
the sender gave is only ever shown, never used as a path.

PDFs carrying active content (JavaScript, launch or submit actions, embedded files, XFA forms...) are refused, not
rewritten: rewriting a hostile PDF means letting a PDF library parse and re-serialise all of it, a parser risk of
its own, and a rewrite alters documents that must reach staff as sent (insurers sign their certificates). Images are
always re-encoded, so that what is stored holds pixels only: no EXIF (the GPS position of the tenant's home), no
comment, no embedded profile, no trailing data.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import secrets
import unicodedata
import warnings
from dataclasses import dataclass

from flask_babel import gettext as _
from PIL import Image, ImageOps
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from app import filestore

log = logging.getLogger(__name__)

MAX_BYTES = 8 * 1024 * 1024
# 40 megapixels: an A4 page scanned at 600 dpi (35 MP) and phone photos in their default mode (12 to 24 MP) pass,
# and a decoded image stays under 160 MB (RGBA) in a web worker. Pillow's own alarm (89 MP) only warns, and its
# error comes at 179 MP. The size is read from the file's header, before any pixel is decoded.
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 85
# Bounds on the inspection of a PDF, so that a hostile file cannot keep a worker busy: a page tree may list the same
# node many times (a million pages declared in a few objects), and each object costs pypdf a parse (about 0.1 ms; a
# 120-page file with 18,000 link annotations takes 2 to 3 s). 300 pages and 50,000 objects leave room for any
# certificate, quote or scan that fits in 8 MB, and bound the inspection to a few seconds.
MAX_PDF_PAGES = 300
MAX_PDF_OBJECTS = 50_000

PDF, JPEG, PNG = "pdf", "jpeg", "png"
CONTENT_TYPES = {PDF: "application/pdf", JPEG: "image/jpeg", PNG: "image/png"}
EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png"}
NAME_EXTENSIONS = {PDF: (".pdf",), JPEG: (".jpg", ".jpeg"), PNG: (".png",)}
PIL_FORMATS = {JPEG: "JPEG", PNG: "PNG"}

# What makes a PDF active (ISO 32000-2, 12.6 actions, 12.5 annotations, 7.11 embedded files, 12.7.9 XFA).
# Action types that run code, open or fetch another file, or send data out. /GoTo, /URI (the reader asks before
# opening a web link), /Named, /Hide and the like stay allowed: ordinary documents use them.
ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/ImportData", "/SubmitForm", "/GoToR", "/GoToE", "/RichMediaExecute"}
# Keys that only exist to carry scripts, embedded files or XFA forms, wherever they appear.
ACTIVE_KEYS = {"/JS", "/JavaScript", "/EmbeddedFiles", "/EF", "/XFA", "/RichMediaContent"}
ACTIVE_SUBTYPES = {"/FileAttachment", "/RichMedia", "/3D"}
ACTIVE_TYPES = {"/EmbeddedFile", "/RichMediaContent"}
# The same names looked up in the raw bytes, as pdfid does: this also catches objects that pypdf does not reach (a
# file whose cross-reference table was made to differ between readers). Only long names: a short one such as /JS
# would now and then turn up by chance inside compressed data.
RAW_ACTIVE_NAMES = {b"JavaScript", b"Launch", b"EmbeddedFile", b"EmbeddedFiles", b"RichMedia", b"RichMediaExecute",
                    b"ImportData", b"SubmitForm"}
RAW_NAME = re.compile(rb"/((?:[A-Za-z0-9]|#[0-9A-Fa-f]{2}){4,40})(?=[\s/<>\[\]()%{}]|$)")  # a whole name


class UploadError(ValueError):
    """A file refused; the message is for the sender."""


class _TooComplex(Exception):
    """A PDF too large to inspect within the bounds above."""


@dataclass
class CheckedFile:
    kind: str
    data: bytes
    original_filename: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]


def _clean_name(name: str | None, kind: str | None = None) -> str:
    """The last path component only, without control characters, for display; ending as its content type does (a
    PNG sent as `facture.pdf` becomes `facture.pdf.png`), so that the saved download opens in the right program."""
    base = (name or "").replace("\\", "/").split("/")[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if c.isprintable() and c not in '<>:"|?*')
    base = base.strip()[:150] or "fichier"
    if kind and not base.lower().endswith(NAME_EXTENSIONS[kind]):
        base += EXTENSIONS[kind]
    return base


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    return None


def check(storage, allowed: tuple[str, ...]) -> CheckedFile:
    """Read an uploaded file and make sure it is really one of `allowed` (magic bytes and a real parse); a PDF must
    carry no active content; an image is returned re-encoded, without its metadata."""
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
            _inspect_pdf(data)
        else:
            data = _reencode_image(data, kind)
    except UploadError:
        raise
    except Exception:  # parsers of hostile input raise anything (KeyError, RecursionError...)
        log.info("upload refused: unreadable %s", kind, exc_info=True)
        raise UploadError(_("Ce fichier est endommagé ou n'est pas ce qu'il prétend être.")) from None
    return CheckedFile(kind, data, _clean_name(storage.filename, kind))


def _allowed_message(allowed: tuple[str, ...]) -> str:
    if allowed == (PDF,):
        return _("Seuls les fichiers PDF sont acceptés.")
    return _("Seules les photos (JPEG, PNG) et les fichiers PDF sont acceptés.")


# --- PDF ------------------------------------------------------------------------------------------------------------

def _inspect_pdf(data: bytes) -> None:
    """Refuse a PDF that needs a password, is too large to inspect, has no page or carries active content."""
    if found := _raw_active_name(data):
        _refuse_active(found)
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        # Opening it needs a password (a PDF that only restricts printing or copying opens with an empty one).
        raise UploadError(_("Ce PDF est protégé par un mot de passe. Envoyez-le sans mot de passe : ouvrez-le, "
                            "puis choisissez « Imprimer » et « Enregistrer au format PDF »."))
    try:
        pages = _count_pages(reader)
        found = _active_content(reader)
    except _TooComplex:
        raise UploadError(_("Ce PDF est trop long ou trop complexe pour être vérifié (%(pages)s pages au plus). "
                            "Envoyez seulement les pages utiles.", pages=MAX_PDF_PAGES)) from None
    if found:
        _refuse_active(found)
    if pages < 1:
        raise UploadError(_("Ce fichier est endommagé ou n'est pas ce qu'il prétend être."))


def _refuse_active(found: str) -> None:
    log.warning("upload refused: PDF with active content (%s)", found)
    raise UploadError(_("Ce PDF contient du contenu actif (script, fichier joint ou action automatique) et ne peut "
                        "pas être accepté. Ouvrez-le, choisissez « Imprimer » puis « Enregistrer au format PDF », "
                        "et envoyez ce nouveau fichier."))


def _raw_active_name(data: bytes) -> str | None:
    for match in RAW_NAME.finditer(data):
        name = match.group(1)
        if b"#" in name:
            name = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), name)
        if name in RAW_ACTIVE_NAMES:
            return "/" + name.decode("ascii", "replace")
    return None


def _count_pages(reader: PdfReader) -> int:
    """The pages of the page tree, counted with each repetition, stopping past MAX_PDF_PAGES (pypdf's own count
    would first expand the whole tree)."""
    root = reader.trailer["/Root"].get_object()
    stack, pages, steps = [root.get("/Pages")], 0, 0
    while stack:
        node = stack.pop()
        node = node.get_object() if node is not None else None
        steps += 1
        if steps > 4 * MAX_PDF_PAGES:
            raise _TooComplex
        if not isinstance(node, DictionaryObject):
            continue
        kids = node.get("/Kids")
        kids = kids.get_object() if kids is not None else None
        if node.get("/Type") == "/Pages" or isinstance(kids, ArrayObject):
            if isinstance(kids, ArrayObject):
                stack.extend(kids)
        else:
            pages += 1
            if pages > MAX_PDF_PAGES:
                raise _TooComplex
    return pages


def _active_content(reader: PdfReader) -> str | None:
    """Walk every object once (those reachable from the trailer, and every object of the cross-reference table,
    referenced or not) and return what makes the document active, if anything. Stream contents are never decoded."""
    if sum(map(len, reader.xref.values())) + len(reader.xref_objStm) > MAX_PDF_OBJECTS:
        raise _TooComplex
    stack: list = [reader.trailer]
    for generation, table in reader.xref.items():
        stack.extend(IndirectObject(number, generation, reader) for number in table)
    stack.extend(IndirectObject(number, 0, reader) for number in reader.xref_objStm)
    seen: set[tuple[int, int]] = set()
    budget = MAX_PDF_OBJECTS
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
            budget -= 1  # an object to parse (what is written inside it was parsed with it)
            if budget < 0:
                raise _TooComplex
            item = item.get_object()
        if isinstance(item, DictionaryObject):  # stream dictionaries included
            if found := _active_entry(item):
                return found
            children = item.values()
        elif isinstance(item, ArrayObject):
            children = item
        else:
            continue
        stack.extend(child for child in children if isinstance(child, (IndirectObject, DictionaryObject,
                                                                       ArrayObject)))
    return None


def _active_entry(dictionary: DictionaryObject) -> str | None:
    if keys := ACTIVE_KEYS.intersection(dictionary.keys()):
        return min(keys)
    for key, values in (("/S", ACTIVE_ACTIONS), ("/Subtype", ACTIVE_SUBTYPES), ("/Type", ACTIVE_TYPES)):
        value = dictionary.get(key)
        if isinstance(value, IndirectObject):
            value = value.get_object()
        if isinstance(value, str) and value in values:
            return f"{key} {value}"
    return None


# --- images ---------------------------------------------------------------------------------------------------------

def _reencode_image(data: bytes, kind: str) -> bytes:
    """The image upright (its EXIF orientation applied), saved again in its own format with nothing but pixels."""
    with warnings.catch_warnings():
        # Pillow warns, then raises, about images over its own limit (above ours): both mean "too big" here, never a
        # 500. The warnings filter is process-wide; if another thread reset it meanwhile, our own limit still holds.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind]])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            _refuse_too_big()
        with image:
            if image.width * image.height > MAX_PIXELS:
                _refuse_too_big()
            image.load()
            upright = ImageOps.exif_transpose(image)
    transparency = upright.info.get("transparency") if kind == PNG else None
    upright.info = {}  # Pillow writes some of `info` back (PNG: ICC profile; JPEG: comment)
    if kind == JPEG and upright.mode not in ("L", "RGB"):
        upright = upright.convert("RGB")
    if kind == PNG and upright.mode == "I":  # 16-bit grey, as Pillow sometimes opens it
        upright = upright.convert("I;16")
    if kind == PNG and upright.mode not in ("1", "L", "LA", "I;16", "I;16B", "P", "RGB", "RGBA"):
        upright = upright.convert("RGBA" if "A" in upright.mode else "RGB")
        transparency = None
    buffer = io.BytesIO()
    if kind == JPEG:
        upright.save(buffer, "JPEG", quality=JPEG_QUALITY)
    elif transparency is not None:
        upright.save(buffer, "PNG", transparency=transparency)
    else:
        upright.save(buffer, "PNG")
    return buffer.getvalue()


def _refuse_too_big():
    raise UploadError(_("Cette image est trop grande : envoyez une image de %(millions)s millions de pixels au plus "
                        "(une photo en qualité normale, ou réduisez-la).", millions=MAX_PIXELS // 1_000_000))


# --- storage --------------------------------------------------------------------------------------------------------

FOLDER = "uploads"  # the key prefix of uploaded files in the file store (their folder under FILES_DIR)


def key_for(name: str) -> str:
    return f"{FOLDER}/{name}"


def store(checked: CheckedFile, target) -> None:
    """Store the file (encrypted, whole or not at all: app.filestore) under a random name and describe it on
    `target` (a StoredFileMixin row)."""
    name = secrets.token_hex(16) + EXTENSIONS[checked.kind]
    filestore.save(key_for(name), checked.data)
    target.stored_name = name
    target.original_filename = checked.original_filename
    target.content_type = checked.content_type
    target.size_bytes = len(checked.data)
    target.sha256 = hashlib.sha256(checked.data).hexdigest()


def key_of(target) -> str | None:
    """The key of `target`'s file in the file store, None if it has none (a download of a key whose file is gone is
    a 404: app.filestore.attachment)."""
    return key_for(target.stored_name) if target.stored_name else None
