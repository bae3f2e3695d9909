"""The one module that turns our HTML templates into PDF (pdfkit + the system's wkhtmltopdf).

wkhtmltopdf is archived upstream, so it only ever renders our own templates, with every user value escaped by
Jinja, JavaScript off, local files off, and every network request sent to a dead proxy; a page that tries to
reach a file or the network fails to render (wkhtmltopdf reports it and pdfkit raises), so such a document is
never produced. Page furniture (footer,
legal mentions) lives in the HTML because Debian's build ignores the header/footer options. Swapping the engine
means changing this file only.
"""

from __future__ import annotations

import os
import shutil

import pdfkit
from flask import current_app, render_template
from flask_babel import force_locale

OPTIONS = {
    "encoding": "UTF-8",
    "page-size": "A4",
    "margin-top": "12mm",
    "margin-bottom": "12mm",
    "margin-left": "14mm",
    "margin-right": "14mm",
    "disable-javascript": None,
    "disable-local-file-access": None,
    "proxy": "http://127.0.0.1:9",  # nothing listens there: any network fetch fails
    "quiet": None,
}


class PdfEngineMissing(RuntimeError):
    """wkhtmltopdf is not installed."""


def _configuration() -> pdfkit.configuration:
    binary = current_app.config.get("WKHTMLTOPDF") or shutil.which("wkhtmltopdf")
    if not binary:
        raise PdfEngineMissing("wkhtmltopdf is not installed (apt-get install wkhtmltopdf)")
    return pdfkit.configuration(wkhtmltopdf=binary)


def html_to_pdf(html: str) -> bytes:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return pdfkit.from_string(html, False, options=OPTIONS, configuration=_configuration())


def render_pdf(template: str, **context) -> bytes:
    """Render `pdf/<template>` in French (legal documents) with the landlord's identity, then convert it."""
    config = current_app.config
    with force_locale("fr"):
        html = render_template(template, landlord={
            "name": config["LANDLORD_NAME"], "address": config["LANDLORD_ADDRESS"],
            "phone": config["LANDLORD_PHONE"], "email": config["LANDLORD_EMAIL"], "legal": config["LANDLORD_LEGAL"],
        }, **context)
    return html_to_pdf(html)
