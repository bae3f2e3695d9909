"""Small real files for upload tests: a one-page PDF and a tiny PNG."""

import io

from PIL import Image
from pypdf import PdfWriter


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
