"""Uploaded files (issue 11, findings 2 and 3): PDFs with active content are refused, image bombs are refused before
they are decoded, accepted images are re-encoded without their metadata, and every uploaded file is served to staff
as an attachment that the browser never renders. Every hostile file is built by tests/samples.py."""

from __future__ import annotations

import hashlib
import html
import io
import random
import re

import pytest
import sqlalchemy as sa
from PIL import Image
from pypdf import PdfReader
from werkzeug.datastructures import FileStorage

from app import filestore
from app.extensions import db
from app.models import Attachment, DirectDebitMandate, InsuranceCertificate, RequestEvent, TenantRequest
from app.services import uploads
from tests import samples
from tests.conftest import csrf_token

ACTIVE = "Ce PDF contient du contenu actif"
ENCRYPTED = "Ce PDF est protégé par un mot de passe"
TOO_LONG = "Ce PDF est trop long ou trop complexe pour être vérifié"
TOO_BIG = "Cette image est trop grande"
DAMAGED = "Ce fichier est endommagé"
TENANT, STAFF, DEBIT_TENANT = "locataire@example.org", "gestionnaire@example.org", "retard@example.org"


def text(response) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def field_error(response, field: str) -> str:
    """The error shown next to `field` (the form macro's `<p id="<field>-error">`), as text."""
    match = re.search(rf'id="{field}-error">(.*?)</p>', response.get_data(as_text=True), re.DOTALL)
    return " ".join(html.unescape(match.group(1)).split()) if match else ""


def new_request(client, name: str, content: bytes, *more: tuple[str, bytes]):
    files = [(name, content), *more]
    return client.post("/demandes/nouvelle", data={
        "csrf_token": csrf_token(client, "/demandes/nouvelle"), "category": "PLUMBING", "subject": "Fuite",
        "description": "L'eau coule sous l'évier.", "attachments": [(io.BytesIO(data), file) for file, data in files]},
        content_type="multipart/form-data")


def send_certificate(client, content: bytes, name: str = "attestation.pdf"):
    return client.post("/contrat/assurance", data={
        "csrf_token": csrf_token(client, "/contrat/assurance"), "insurer": "MAIF", "policy_number": "A-123",
        "start_date": "2026-09-01", "end_date": "2027-08-31", "document": (io.BytesIO(content), name)},
        content_type="multipart/form-data")


def send_rib(client, content: bytes, name: str = "rib.pdf"):
    """Step 1 of the direct-debit subscription (tests/test_sepa.py posts it the same way)."""
    form = client.get("/paiement/prelevement").get_data(as_text=True)
    return client.post("/paiement/prelevement", data={
        "csrf_token": csrf_token(client, "/paiement/prelevement"), "iban": "FR76 3000 4008 1900 0123 4567 879",
        "bic": "", "leases": re.findall(r'name="leases" value="(\d+)" checked', form),
        "account_holder": "KARIM BENALI", "street": "62 boulevard Jean Moulin", "postcode": "45000",
        "city": "Orléans", "debit_day": "7", "consent": "y", "rib": (io.BytesIO(content), name)},
        content_type="multipart/form-data")


def written(app):
    """Everything an upload could leave behind: the files of the upload folder and the rows that describe them."""
    with app.app_context():
        files = filestore.keys("uploads/")
        rows = [db.session.scalar(sa.select(sa.func.count()).select_from(model)) for model in
                (TenantRequest, RequestEvent, Attachment, InsuranceCertificate, DirectDebitMandate)]
    return files, rows


def last_attachment(app) -> Attachment:
    with app.app_context():
        return db.session.scalar(sa.select(Attachment).order_by(Attachment.id.desc()))


def stored_bytes(app, row) -> bytes:
    with app.app_context():
        return filestore.load(uploads.key_of(row))


def check(app, data: bytes, name: str = "fichier", allowed=(uploads.PDF, uploads.JPEG, uploads.PNG)):
    with app.test_request_context():
        return uploads.check(FileStorage(io.BytesIO(data), filename=name), allowed)


def refusal(app, data: bytes, name: str = "fichier", allowed=(uploads.PDF, uploads.JPEG, uploads.PNG)) -> str:
    with pytest.raises(uploads.UploadError) as error:
        check(app, data, name, allowed)
    return str(error.value)


# --- finding 2: active content in PDFs -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(samples.ACTIVE_PDFS))
def test_each_kind_of_active_pdf_content_is_refused(app, kind):
    assert refusal(app, samples.ACTIVE_PDFS[kind](), "devis.pdf").startswith(ACTIVE)


@pytest.mark.parametrize("kind", sorted(samples.ACTIVE_PDFS))
def test_the_object_walk_alone_finds_each_kind(app, kind, monkeypatch):
    """Most samples are also caught by the raw byte scan first; without it, the walk through pypdf finds each one."""
    monkeypatch.setattr(uploads, "_raw_active_name", lambda data: None)
    assert refusal(app, samples.ACTIVE_PDFS[kind](), "devis.pdf").startswith(ACTIVE)


def test_the_raw_byte_scan_finds_what_pypdf_does_not_reach(app):
    data = samples.pdf_unlisted_object()
    with app.app_context():
        assert uploads._active_content(PdfReader(io.BytesIO(data))) is None  # invisible to the walk
    assert refusal(app, data, "devis.pdf").startswith(ACTIVE)


def test_active_pdfs_are_refused_as_request_attachments_and_nothing_is_written(app, client_for, demo):
    client = client_for(TENANT)
    before = written(app)
    for kind, build in samples.ACTIVE_PDFS.items():
        response = new_request(client, "devis.pdf", build())
        assert response.status_code == 400, kind
        assert field_error(response, "attachments").startswith(ACTIVE), kind
    assert written(app) == before


def test_one_refused_file_among_several_writes_none_of_them(app, client_for, demo):
    client = client_for(TENANT)
    before = written(app)
    for bad in (("devis.pdf", samples.pdf_open_action_js()), ("plan.png", samples.png_declaring(30_000, 30_000))):
        response = new_request(client, "fuite.png", samples.exif_photo("PNG"), ("facture.pdf", samples.pdf_bytes()),
                                bad)
        assert response.status_code == 400, bad[0]
    assert written(app) == before


def test_active_pdfs_are_refused_as_insurance_certificates_and_nothing_is_written(app, client_for, demo):
    client = client_for(TENANT)
    before = written(app)
    for kind, build in samples.ACTIVE_PDFS.items():
        response = send_certificate(client, build())
        assert response.status_code == 400, kind
        assert field_error(response, "document").startswith(ACTIVE), kind
    assert written(app) == before


def test_an_active_pdf_is_refused_as_a_rib(app, client_for, demo):
    client = client_for(DEBIT_TENANT)
    before = written(app)
    for build in (samples.pdf_open_action_js, samples.pdf_embedded_file, samples.pdf_open_action_launch):
        response = send_rib(client, build())
        assert response.status_code == 400 and field_error(response, "rib").startswith(ACTIVE)
    assert written(app) == before


def test_staff_replies_are_checked_too(app, client_for, demo):
    tenant = client_for(TENANT)
    assert new_request(tenant, "fuite.png", samples.png_bytes()).status_code == 302
    with app.app_context():
        request_id = db.session.scalar(sa.select(TenantRequest.id).order_by(TenantRequest.id.desc()))
    staff = client_for(STAFF)
    url = f"/agence/demandes/{request_id}"
    before = written(app)
    for name, content, message in (("note.pdf", samples.pdf_js_name_tree(), ACTIVE),
                                   ("plan.png", samples.png_declaring(30_000, 30_000), TOO_BIG)):
        response = staff.post(f"{url}/reponse", data={
            "reply-csrf_token": csrf_token(staff, url), "reply-body": "Voir la pièce jointe.",
            "reply-attachments": [(io.BytesIO(content), name)]}, content_type="multipart/form-data")
        assert response.status_code == 400 and message in text(response), name
    assert written(app) == before


def test_clean_pdfs_are_accepted_and_stored_byte_for_byte(app, client_for, demo):
    """PDFs are refused, never rewritten: what staff receive is what the insurer signed."""
    client = client_for(TENANT)
    for content in (samples.pdf_bytes(), samples.pdf_with_harmless_actions(), samples.pdf_encrypted("")):
        assert new_request(client, "devis.pdf", content).status_code == 302
        attachment = last_attachment(app)
        assert stored_bytes(app, attachment) == content and attachment.sha256 == hashlib.sha256(content).hexdigest()
        assert send_certificate(client, content).status_code == 302
        with app.app_context():
            certificate = db.session.scalar(sa.select(InsuranceCertificate).order_by(InsuranceCertificate.id.desc()))
            assert filestore.load(uploads.key_of(certificate)) == content


def test_a_pdf_that_needs_a_password_is_refused_with_a_message(app, client_for, demo):
    client = client_for(TENANT)
    before = written(app)
    response = send_certificate(client, samples.pdf_encrypted("secret"))
    assert response.status_code == 400 and field_error(response, "document").startswith(ENCRYPTED)
    assert written(app) == before


def test_a_pdf_too_large_to_inspect_is_refused(app, client_for, demo, monkeypatch):
    assert refusal(app, samples.pdf_pages(uploads.MAX_PDF_PAGES + 1)).startswith(TOO_LONG)
    assert refusal(app, samples.pdf_page_tree_bomb()).startswith(TOO_LONG)  # 10**6 pages from 5 objects
    assert check(app, samples.pdf_pages(uploads.MAX_PDF_PAGES)).kind == uploads.PDF
    monkeypatch.setattr(uploads, "MAX_PDF_OBJECTS", 3)  # the object walk is bounded too
    assert refusal(app, samples.pdf_bytes()).startswith(TOO_LONG)
    client = client_for(TENANT)
    before = written(app)
    response = new_request(client, "devis.pdf", samples.pdf_bytes())
    assert response.status_code == 400 and field_error(response, "attachments").startswith(TOO_LONG)
    assert written(app) == before


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes about the damaged EXIF it skips
def test_damaged_or_mutated_files_are_refused_cleanly_never_with_an_error(app):
    """Truncated and randomly altered files: each one is accepted or refused with a message, nothing else escapes."""
    rng = random.Random(11)
    seeds = [samples.pdf_bytes(), samples.pdf_js_name_tree(), samples.pdf_encrypted(""),
             samples.pdf_file_attachment_annotation(), samples.exif_photo(), samples.exif_photo("PNG", 6)]
    for seed in seeds:
        variants = [seed[:cut] for cut in range(8, len(seed), max(1, len(seed) // 25))]
        for _ in range(25):
            mutated = bytearray(seed)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(8, len(mutated))] = rng.randrange(256)
            variants.append(bytes(mutated))
        for variant in variants:
            try:
                check(app, variant)
            except uploads.UploadError:
                pass


# --- finding 3: image bombs, EXIF ----------------------------------------------------------------------------------

def test_a_png_declaring_30000_by_30000_pixels_is_a_400_with_a_french_message(app, client_for, demo):
    bomb = samples.png_declaring(30_000, 30_000)
    assert len(bomb) < 110 * 1024  # the 106 KiB file
    client = client_for(TENANT)
    before = written(app)
    response = new_request(client, "fuite.png", bomb)
    assert response.status_code == 400
    message = field_error(response, "attachments")
    assert message.startswith(TOO_BIG) and "40 millions de pixels" in message
    assert written(app) == before


@pytest.mark.parametrize("data", [
    samples.png_declaring(10_000, 10_000),   # 100 MP: above Pillow's own warning threshold (89 MP)
    samples.png_declaring(8_000, 6_000),     # 48 MP: below Pillow's threshold, above ours
    samples.png_declaring(8_000, 5_001),     # one row over 40 MP
    samples.jpeg_declaring(20_000, 20_000),  # a JPEG whose header lies about its size
], ids=["100MP-png", "48MP-png", "40MP-plus-a-row", "400MP-jpeg"])
def test_images_over_the_pixel_limit_are_refused(app, data):
    assert refusal(app, data).startswith(TOO_BIG)


def test_a_100_megapixel_image_is_refused_as_a_rib(app, client_for, demo):
    client = client_for(DEBIT_TENANT)
    before = written(app)
    response = send_rib(client, samples.png_declaring(10_000, 10_000), "rib.png")
    assert response.status_code == 400 and field_error(response, "rib").startswith(TOO_BIG)
    assert written(app) == before


def test_an_image_of_exactly_the_pixel_limit_is_accepted(app):
    assert uploads.MAX_PIXELS == 8_000 * 5_000
    checked = check(app, samples.png_declaring(8_000, 5_000), "plan.png")
    assert checked.kind == uploads.PNG and Image.open(io.BytesIO(checked.data)).size == (8_000, 5_000)


def assert_no_metadata(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert len(image.getexif()) == 0 and not image.getexif().get_ifd(0x8825)
    assert not {"exif", "comment", "Comment", "xmp", "icc_profile"} & set(image.info)
    assert b"Exif" not in data and b"Jean Moulin" not in data and b"Telephone" not in data
    return image


def test_a_photo_is_stored_without_its_gps_position(app, client_for, demo):
    photo = samples.exif_photo()
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)  # the sample does carry a GPS position
    client = client_for(TENANT)
    assert new_request(client, "fuite.jpg", photo).status_code == 302
    attachment = last_attachment(app)
    data = stored_bytes(app, attachment)
    image = assert_no_metadata(data)
    assert image.format == "JPEG" and image.size == (8, 4)
    assert attachment.content_type == "image/jpeg" and attachment.stored_name.endswith(".jpg")
    assert attachment.size_bytes == len(data) and attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert client.get(f"/demandes/piece/{attachment.id}").data == data


def test_a_png_rib_is_stored_without_its_metadata(app, client_for, demo):
    client = client_for(DEBIT_TENANT)
    assert send_rib(client, samples.exif_photo("PNG"), "rib.png").status_code == 200
    assert client.post("/paiement/prelevement/valider",
                       data={"csrf_token": csrf_token(client, "/paiement/")}).status_code == 302
    with app.app_context():
        mandate = db.session.scalar(sa.select(DirectDebitMandate).order_by(DirectDebitMandate.id.desc()))
        data = filestore.load(uploads.key_of(mandate))
        assert mandate.content_type == "image/png" and mandate.size_bytes == len(data)
        assert mandate.sha256 == hashlib.sha256(data).hexdigest()
    assert assert_no_metadata(data).format == "PNG"


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_a_photo_turned_by_its_exif_orientation_is_stored_upright(app, kind):
    checked = check(app, samples.exif_photo(kind, orientation=6), "photo")
    image = assert_no_metadata(checked.data).convert("RGB")
    assert image.size == (4, 8)  # turned a quarter clockwise: the left (red) half is now on top
    red, blue = image.getpixel((2, 1)), image.getpixel((2, 6))
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60


def test_re_encoding_keeps_the_type_and_gives_a_matching_extension(app):
    assert check(app, samples.png_bytes(), "evier.png").data == samples.png_bytes()  # already clean: unchanged
    jpeg = check(app, samples.exif_photo(), "IMG_1234.heic")
    assert (jpeg.kind, jpeg.content_type, jpeg.original_filename) == (uploads.JPEG, "image/jpeg", "IMG_1234.heic.jpg")
    assert check(app, samples.exif_photo(), "photo.JPEG").original_filename == "photo.JPEG"
    disguised = check(app, samples.png_bytes(), "facture.pdf")
    assert (disguised.content_type, disguised.original_filename) == ("image/png", "facture.pdf.png")
    assert check(app, samples.pdf_bytes(), "page.html").original_filename == "page.html.pdf"


# --- siblings: how uploaded files are served ------------------------------------------------------------------------

def assert_served_as_attachment(response, content_type: str, data: bytes):
    assert response.status_code == 200 and response.data == data
    assert response.headers["Content-Type"].split(";")[0] == content_type
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_uploaded_files_are_served_as_attachments_never_rendered(app, client_for, demo):
    tenant = client_for(TENANT)
    assert new_request(tenant, "fuite.png", samples.exif_photo("PNG")).status_code == 302
    photo = last_attachment(app)
    assert send_certificate(tenant, samples.pdf_bytes()).status_code == 302
    debit = client_for(DEBIT_TENANT)
    assert send_rib(debit, samples.exif_photo(), "rib.jpg").status_code == 200
    assert debit.post("/paiement/prelevement/valider",
                      data={"csrf_token": csrf_token(debit, "/paiement/")}).status_code == 302
    with app.app_context():
        certificate = db.session.scalar(sa.select(InsuranceCertificate).order_by(InsuranceCertificate.id.desc()))
        mandate = db.session.scalar(sa.select(DirectDebitMandate).order_by(DirectDebitMandate.id.desc()))
        rib = filestore.load(uploads.key_of(mandate))
    staff = client_for(STAFF)
    photo_data = stored_bytes(app, photo)
    assert_served_as_attachment(tenant.get(f"/demandes/piece/{photo.id}"), "image/png", photo_data)
    assert_served_as_attachment(staff.get(f"/agence/demandes/piece/{photo.id}"), "image/png", photo_data)
    assert_served_as_attachment(staff.get(f"/agence/assurances/{certificate.id}/fichier"), "application/pdf",
                                samples.pdf_bytes())
    assert_served_as_attachment(staff.get(f"/agence/mandats/{mandate.id}/rib"), "image/jpeg", rib)
