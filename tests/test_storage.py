"""Issue 13, point 2 (files): app.filestore is the portal's one file store, with two backends behind one API keyed by
a relative key ("documents/ab12….pdf"): `folder` (FILES_DIR) and `s3` (S3-compatible object storage through boto3).

The same behaviour suite runs against both backends. The S3 backend talks to a REAL S3-speaking server over HTTP:
moto's standalone server on a free loopback port (never moto's in-process mock): every request is signed, sent and
answered as it would be by MinIO, Ceph or Amazon S3. Then the portal itself runs on S3 end to end: a tenant downloads
a due notice rendered and stored in the bucket, staff attach a PDF and a tenant uploads a photo that are read back
through the download routes, the readiness probe, the key rotation and a backup with its restore go through the
bucket, and nothing is ever written under FILES_DIR.
"""

from __future__ import annotations

import functools
import io
import os
import re
import secrets
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from werkzeug.exceptions import NotFound

from app import backup, crypto, filestore
from app.extensions import db
from app.models import Attachment, Document, DocumentKind
from app.services import documents
from config import DEV_DATA_ENCRYPTION_KEY, ConfigError, TestingConfig
from tests.conftest import _free_port, csrf_token, make_app
from tests.samples import pdf_bytes, png_bytes

REGION = "eu-west-3"
CREDENTIALS = {"S3_ACCESS_KEY_ID": "testing-key-id", "S3_SECRET_ACCESS_KEY": "testing-secret-access-key"}
CLEAR = b"%PDF-1.7 IBAN FR76 3000 4008 1900 0123 4567 879, Karim Benali, 62 boulevard Jean Moulin"


# --- the S3 server --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3_server():
    """moto's standalone S3 server, on a free loopback port for this module; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@functools.lru_cache(maxsize=None)
def admin_client(endpoint: str):
    """A boto3 client of its own (not the portal's), to look at the bucket from outside."""
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=CREDENTIALS["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["S3_SECRET_ACCESS_KEY"])


def new_bucket(endpoint: str) -> str:
    name = f"espace-{secrets.token_hex(6)}"
    admin_client(endpoint).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def s3_settings(endpoint: str, bucket: str, prefix: str = "") -> dict:
    return {"FILE_STORAGE": "s3", "S3_BUCKET": bucket, "S3_PREFIX": prefix, "S3_ENDPOINT_URL": endpoint,
            "S3_REGION": REGION, **CREDENTIALS}


# --- the behaviour suite, on both backends ----------------------------------------------------------------------

class Backend:
    """A bare Flask app whose file store is one backend, and a look at what that backend really holds."""

    def __init__(self, kind: str, tmp: Path, endpoint: str | None = None):
        self.kind, self.files_dir = kind, tmp / "files"
        self.app = Flask(__name__)
        self.app.config.update(FILES_DIR=self.files_dir, DATA_ENCRYPTION_KEYS=DEV_DATA_ENCRYPTION_KEY,
                               FILE_STORAGE="folder")
        if kind == "s3":
            self.endpoint, self.bucket, self.prefix = endpoint, new_bucket(endpoint), "tenant-a/"
            self.app.config.update(s3_settings(endpoint, self.bucket, self.prefix))

    def stored(self, key: str) -> bytes:
        """What the backend holds under `key`, read without app.filestore."""
        if self.kind == "folder":
            return (self.files_dir / key).read_bytes()
        return admin_client(self.endpoint).get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()

    def put(self, key: str, raw: bytes) -> None:
        """Put bytes in the backend without app.filestore (a file from before encryption, a leftover)."""
        if self.kind == "folder":
            path = self.files_dir / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(raw)
        else:
            admin_client(self.endpoint).put_object(Bucket=self.bucket, Key=self.prefix + key, Body=raw)


@pytest.fixture(params=["folder", "s3"])
def store(request, tmp_path):
    endpoint = request.getfixturevalue("s3_server") if request.param == "s3" else None
    backend = Backend(request.param, tmp_path, endpoint)
    with backend.app.app_context():
        yield backend


def test_save_then_load_round_trip_stores_a_fernet_token_not_the_clear_data(store):
    key = f"uploads/{secrets.token_hex(16)}.pdf"
    filestore.save(key, CLEAR)
    assert filestore.load(key) == CLEAR
    raw = store.stored(key)
    assert raw.startswith(filestore.TOKEN_PREFIX) and CLEAR not in raw and b"FR76" not in raw
    assert crypto.decrypt_bytes(raw) == CLEAR and filestore.read_raw(key) == raw
    filestore.save(key, b"replaced")  # a key written again holds the new content
    assert filestore.load(key) == b"replaced" and filestore.keys() == [key]
    filestore.save("documents/empty.pdf", b"")
    assert filestore.load("documents/empty.pdf") == b""


def test_exists_and_delete(store):
    key = "documents/0123456789abcdef.pdf"
    assert not filestore.exists(key)
    with pytest.raises(FileNotFoundError):
        filestore.load(key)
    filestore.delete(key)  # nothing to delete: no error
    filestore.save(key, CLEAR)
    assert filestore.exists(key) and not filestore.exists("documents/0123456789abcdef")
    filestore.delete(key)
    assert not filestore.exists(key) and filestore.keys() == []
    with pytest.raises(FileNotFoundError):
        filestore.load(key)
    with pytest.raises(FileNotFoundError):
        filestore.read_raw(key)


def test_keys_lists_every_stored_file_sorted_and_by_prefix(store):
    names = ["sepa/c.xml", "documents/b.pdf", "uploads/a.png", "documents/a.pdf", "payments/z.pdf",
             "documents-old/x.pdf"]
    for name in names:
        filestore.save(name, name.encode())
    filestore.write_raw("documents/.ready-probe.part", b"being written")  # a write in progress: never listed
    assert filestore.keys() == sorted(names)
    assert filestore.keys("documents/") == ["documents/a.pdf", "documents/b.pdf"]
    assert filestore.keys("documents") == ["documents-old/x.pdf", "documents/a.pdf", "documents/b.pdf"]
    assert filestore.keys("documents/b") == ["documents/b.pdf"]
    assert filestore.keys("nothing/") == []
    assert [filestore.load(key) for key in filestore.keys()] == [key.encode() for key in sorted(names)]


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../outside.pdf", "documents/../../x", "documents//a.pdf",
                                 "documents/./a.pdf", "documents\\a.pdf", "documents/a\n.pdf", "documents/",
                                 "x" * 600])
def test_a_key_that_could_leave_the_store_is_refused(store, key):
    with pytest.raises(ValueError):
        filestore.save(key, CLEAR)
    with pytest.raises(ValueError):
        filestore.load(key)
    assert filestore.keys() == []
    assert not any(store.files_dir.parent.parent.rglob("outside.pdf"))


def test_attachment_is_a_download_never_cached_and_a_404_when_the_file_is_gone(store):
    filestore.save("uploads/photo.png", png_bytes())
    with store.app.test_request_context():
        response = filestore.attachment("uploads/photo.png", "image/png", "fuite sous l'évier.png")
        response.direct_passthrough = False
        assert response.get_data() == png_bytes() and response.mimetype == "image/png"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.headers["Cache-Control"] == "no-store"
        with pytest.raises(NotFound):
            filestore.attachment("uploads/gone.png", "image/png", "gone.png")


def test_files_from_before_encryption_still_read_and_the_rotation_re_encrypts_everything(store):
    filestore.save("documents/new.pdf", b"under the old key")
    store.put("uploads/legacy.pdf", CLEAR)  # written in clear, before files were encrypted
    assert filestore.load("uploads/legacy.pdf") == CLEAR
    new_key = Fernet.generate_key().decode()
    store.app.config["DATA_ENCRYPTION_KEYS"] = f"{new_key},{DEV_DATA_ENCRYPTION_KEY}"
    assert filestore.rotate_all() == (2, 1, 1)  # seen, encrypted from clear, re-encrypted
    assert filestore.rotate_all() == (2, 0, 0)  # idempotent
    store.app.config["DATA_ENCRYPTION_KEYS"] = new_key  # the old key removed: everything still opens
    assert filestore.load("uploads/legacy.pdf") == CLEAR
    assert filestore.load("documents/new.pdf") == b"under the old key"
    assert all(store.stored(key).startswith(filestore.TOKEN_PREFIX) and CLEAR not in store.stored(key)
               for key in filestore.keys())
    store.app.config["DATA_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()  # a key that opens nothing
    with pytest.raises(crypto.DecryptionError):
        filestore.load("documents/new.pdf")


def test_describe_names_the_store_and_no_secret(store):
    where = filestore.describe()
    if store.kind == "folder":
        assert where == f"FILES_DIR {store.files_dir}"
    else:
        assert where == f"S3 bucket {store.bucket} (prefix tenant-a/, at {store.endpoint})"
        assert CREDENTIALS["S3_SECRET_ACCESS_KEY"] not in where and CREDENTIALS["S3_ACCESS_KEY_ID"] not in where


# --- folder only: whole or nothing ----------------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path):
    backend = Backend("folder", tmp_path)
    with backend.app.app_context():
        yield backend


def test_folder_a_failed_write_leaves_the_old_file_whole_and_no_partial_file(folder, monkeypatch):
    key = "documents/quittance.pdf"
    filestore.save(key, b"the first version")
    before = folder.stored(key)

    def crash(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)  # the write aside happened; the rename never does
    with pytest.raises(OSError):
        filestore.save(key, b"the second version")
    with pytest.raises(OSError):
        filestore.save("documents/new.pdf", b"a new file")
    monkeypatch.undo()
    assert folder.stored(key) == before and filestore.load(key) == b"the first version"
    assert not filestore.exists("documents/new.pdf")
    assert sorted(path.name for path in folder.files_dir.rglob("*") if path.is_file()) == ["quittance.pdf"]


def test_folder_a_file_being_written_is_invisible_until_renamed_whole(folder, monkeypatch):
    """A process killed in the middle of a write leaves at most a `.part` file: never listed, never read as the key,
    never part of a rotation or a backup."""
    seen = {}
    real_replace = os.replace

    def look_then_rename(source, target):
        seen["partial"] = Path(source).name
        seen["keys"] = filestore.keys()
        seen["exists"] = filestore.exists("uploads/rib.pdf")
        seen["written"] = crypto.decrypt_bytes(Path(source).read_bytes())
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", look_then_rename)
    filestore.save("uploads/rib.pdf", CLEAR)
    assert seen["partial"].startswith("rib.pdf.") and seen["partial"].endswith(filestore.PARTIAL_SUFFIX)
    assert seen == {"partial": seen["partial"], "keys": [], "exists": False, "written": CLEAR}
    assert filestore.keys() == ["uploads/rib.pdf"] and filestore.load("uploads/rib.pdf") == CLEAR
    folder.put(f"uploads/crashed.pdf.1234abcd{filestore.PARTIAL_SUFFIX}", b"half a fi")  # a crash's leftover
    assert filestore.keys() == ["uploads/rib.pdf"] and filestore.rotate_all() == (1, 0, 0)
    assert backup.stored_files(folder.files_dir) == ["uploads/rib.pdf"]


def test_folder_a_path_under_files_dir_is_read_as_its_key(folder):
    """Tools that walk FILES_DIR (the backup tests, the secrets-at-rest tests) hand over paths."""
    filestore.save("documents/a.pdf", CLEAR)
    assert filestore.load(folder.files_dir / "documents" / "a.pdf") == CLEAR
    with pytest.raises(ValueError):
        filestore.load(folder.files_dir.parent / "elsewhere.pdf")


# --- S3 only -------------------------------------------------------------------------------------------------------

@pytest.fixture
def bucket_store(tmp_path, s3_server):
    backend = Backend("s3", tmp_path, s3_server)
    with backend.app.app_context():
        yield backend


def test_s3_objects_are_prefixed_keys_on_the_server_over_plain_http(bucket_store):
    filestore.save("sepa/batch.xml", b"<Document>FR7630004008190001234567879</Document>")
    listed = admin_client(bucket_store.endpoint).list_objects_v2(Bucket=bucket_store.bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["tenant-a/sepa/batch.xml"]
    # The object lives on the server, private: an unsigned HTTP GET is refused; a signed URL, fetched by plain
    # urllib, gets the Fernet token and nothing in clear.
    url = f"{bucket_store.endpoint}/{bucket_store.bucket}/tenant-a/sepa/batch.xml"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url)
    assert refused.value.code == 403
    signed = admin_client(bucket_store.endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": bucket_store.bucket, "Key": "tenant-a/sepa/batch.xml"}, ExpiresIn=60)
    assert signed.startswith(url + "?")
    with urllib.request.urlopen(signed) as answer:
        body = answer.read()
    assert body.startswith(filestore.TOKEN_PREFIX) and b"FR76" not in body
    assert filestore.load("sepa/batch.xml") == b"<Document>FR7630004008190001234567879</Document>"


def test_s3_the_client_is_made_once_per_app_on_first_use(bucket_store):
    app = bucket_store.app
    assert "filestore_s3" not in app.extensions  # nothing made before the first use
    filestore.save("documents/a.pdf", CLEAR)
    client = app.extensions["filestore_s3"][1].client
    filestore.load("documents/a.pdf")
    filestore.keys()
    assert app.extensions["filestore_s3"][1].client is client
    assert client.meta.config.s3["addressing_style"] == "path"  # a custom endpoint: path-style URLs
    other = Flask(__name__)
    other.config.update(app.config)
    with other.app_context():
        assert filestore.load("documents/a.pdf") == CLEAR
        assert other.extensions["filestore_s3"][1].client is not client  # one per app


def test_s3_failures_are_storage_errors_naming_no_secret(bucket_store):
    app = bucket_store.app
    app.config["S3_BUCKET"] = "no-such-bucket-here"
    with pytest.raises(filestore.StorageError) as missing_bucket:
        filestore.save("documents/a.pdf", CLEAR)
    assert isinstance(missing_bucket.value, OSError) and "NoSuchBucket" in str(missing_bucket.value)
    app.config.update(S3_BUCKET=bucket_store.bucket, S3_ENDPOINT_URL=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(filestore.StorageError) as unreachable:
        filestore.exists("documents/a.pdf")
    assert "head_object failed" in str(unreachable.value)
    assert CREDENTIALS["S3_SECRET_ACCESS_KEY"] not in str(missing_bucket.value) + str(unreachable.value)


def test_the_settings_are_checked_before_anything_is_stored(tmp_path):
    problem = filestore.settings_problem
    assert problem({"FILE_STORAGE": "folder"}) is None and problem(TestingConfig) is None
    assert "FILE_STORAGE must be folder or s3" in problem({"FILE_STORAGE": "nfs"})
    assert "S3_BUCKET is not set" in problem({"FILE_STORAGE": "s3"})
    assert "go together" in problem({"FILE_STORAGE": "s3", "S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "id"})
    assert "S3_ADDRESSING_STYLE" in problem({"FILE_STORAGE": "s3", "S3_BUCKET": "b", "S3_ADDRESSING_STYLE": "dns"})
    assert "S3_ENDPOINT_URL" in problem({"FILE_STORAGE": "s3", "S3_BUCKET": "b", "S3_ENDPOINT_URL": "minio:9000"})
    assert problem({"FILE_STORAGE": "s3", "S3_BUCKET": "b", "S3_ENDPOINT_URL": "https://s3.gra.io.cloud.ovh.net"}) \
        is None
    from app import create_app

    with pytest.raises(ConfigError, match="S3_BUCKET is not set"):  # the portal does not start without a bucket
        create_app(TestingConfig(), INSTANCE_DIR=tmp_path, FILES_DIR=tmp_path / "files", FILE_STORAGE="s3")


# --- the portal on S3, end to end ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(s3_server, tmp_path_factory):
    """The portal with FILE_STORAGE=s3 (replaces conftest's `app` in this module: `demo` and `client_for` use it)."""
    tmp = tmp_path_factory.mktemp("app-on-s3")
    application = make_app(f"sqlite:///{tmp / 'test.db'}", tmp, **s3_settings(s3_server, new_bucket(s3_server),
                                                                              "espace/"))
    application.config["DB_BACKEND"] = "sqlite"
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _empty_bucket(request):
    """The portal's bucket outlives a test (module scope): emptied after each test that used it, as the database
    is wiped."""
    yield
    if "app" in request.fixturenames:
        app = request.getfixturevalue("app")
        client = admin_client(app.config["S3_ENDPOINT_URL"])
        for key in objects(app):
            client.delete_object(Bucket=app.config["S3_BUCKET"], Key=key)


def objects(app) -> dict[str, bytes]:
    """Every object of the app's bucket, read from outside the portal."""
    client = admin_client(app.config["S3_ENDPOINT_URL"])
    listed = client.list_objects_v2(Bucket=app.config["S3_BUCKET"]).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=app.config["S3_BUCKET"], Key=item["Key"])["Body"].read()
            for item in listed}


def files_under_files_dir(app) -> list[Path]:
    root = Path(app.config["FILES_DIR"])
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_on_s3_a_tenant_downloads_a_due_notice_rendered_and_stored_in_the_bucket(app, client_for, demo):
    with app.app_context():
        document_id = db.session.scalar(sa.select(Document.id).where(
            Document.household_id == demo["locataire"], Document.kind == DocumentKind.DUE_NOTICE,
            Document.stored_name.is_(None)).order_by(Document.id))
    tenant = client_for("locataire@example.org")
    first = tenant.get(f"/documents/{document_id}")
    assert first.status_code == 200 and first.data.startswith(b"%PDF")
    assert first.headers["Content-Disposition"].startswith("attachment;") and first.headers["Cache-Control"] == \
        "no-store"
    with app.app_context():
        stored_name = db.session.get(Document, document_id).stored_name
    key = f"espace/documents/{stored_name}"
    stored = objects(app)
    assert key in stored and stored[key].startswith(filestore.TOKEN_PREFIX) and b"%PDF" not in stored[key]
    with app.app_context():
        assert crypto.decrypt_bytes(stored[key]) == first.data
    again = tenant.get(f"/documents/{document_id}")  # served from the bucket, not rendered again
    assert again.data == first.data
    with app.app_context():
        assert db.session.get(Document, document_id).stored_name == stored_name
    admin_client(app.config["S3_ENDPOINT_URL"]).delete_object(Bucket=app.config["S3_BUCKET"], Key=key)
    lost = tenant.get(f"/documents/{document_id}")  # the object lost: rendered again and stored again
    assert lost.status_code == 200 and lost.data.startswith(b"%PDF")
    with app.app_context():
        renewed = db.session.get(Document, document_id).stored_name
    assert renewed != stored_name and f"espace/documents/{renewed}" in objects(app)
    assert files_under_files_dir(app) == []


def test_on_s3_staff_attach_a_pdf_and_a_tenant_s_photo_are_read_back_through_the_download_routes(
        app, client_for, demo):
    staff = client_for("gestionnaire@example.org")
    page = f"/agence/foyers/{demo['locataire']}"
    response = staff.post(f"{page}/document", data={
        "csrf_token": csrf_token(staff, page), "document-title": "Courrier de l'agence", "document-lease": "",
        "document-confirm": "y", "document-file": (io.BytesIO(pdf_bytes()), "courrier.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        document = db.session.scalar(sa.select(Document).where(Document.title == "Courrier de l'agence"))
        document_id, key = document.id, documents.stored_key(document)
        assert filestore.keys("documents/") == [key]
    assert objects(app)[f"espace/{key}"].startswith(filestore.TOKEN_PREFIX)
    tenant = client_for("locataire@example.org")
    download = tenant.get(f"/documents/{document_id}")
    assert download.status_code == 200 and download.data == pdf_bytes()
    assert staff.get(f"{page}/document/{document_id}").data == pdf_bytes()

    photo = png_bytes()
    response = tenant.post("/demandes/nouvelle", data={
        "csrf_token": csrf_token(tenant, "/demandes/nouvelle"), "category": "PLUMBING", "subject": "Fuite",
        "description": "L'eau coule sous l'évier.", "attachments": [(io.BytesIO(photo), "fuite.png")]},
        content_type="multipart/form-data")
    assert response.status_code == 302
    with app.app_context():
        attachment = db.session.scalar(sa.select(Attachment).order_by(Attachment.id.desc()))
        attachment_id, name = attachment.id, attachment.stored_name
    stored = objects(app)[f"espace/uploads/{name}"]
    assert stored.startswith(filestore.TOKEN_PREFIX)
    with app.app_context():
        served = filestore.load(f"uploads/{name}")  # re-encoded without metadata: what the routes give back
    assert staff.get(f"/agence/demandes/piece/{attachment_id}").data == served
    assert tenant.get(f"/demandes/piece/{attachment_id}").data == served
    with app.app_context():
        filestore.delete(f"uploads/{name}")
    assert staff.get(f"/agence/demandes/piece/{attachment_id}").status_code == 404  # the object gone: a 404
    assert files_under_files_dir(app) == []


def test_on_s3_readiness_rotation_and_backup_go_through_the_bucket(app, demo, tmp_path):
    with app.app_context():
        document = db.session.scalar(sa.select(Document).where(
            Document.household_id == demo["locataire"], Document.kind == DocumentKind.DUE_NOTICE).order_by(Document.id))
        documents.ensure_file(document)
        clear = {key: filestore.load(key) for key in filestore.keys()}
    assert clear

    ready = app.test_client().get("/health/ready")
    assert ready.json["checks"]["files"]["status"] == "ok"
    assert not [key for key in objects(app) if ".ready-" in key]  # the probe object is gone

    saved = app.config["DATA_ENCRYPTION_KEYS"]
    try:
        app.config["DATA_ENCRYPTION_KEYS"] = f"{Fernet.generate_key().decode()},{saved}"
        rotated = app.test_cli_runner().invoke(args=["rotate-encryption-key"])
        assert rotated.exit_code == 0, rotated.output
        assert f"S3 bucket {app.config['S3_BUCKET']} (prefix espace/, at {app.config['S3_ENDPOINT_URL']}): " \
               f"{len(clear)} of {len(clear)} files encrypted again with the first key" in rotated.output
        with app.app_context():
            assert {key: filestore.load(key) for key in filestore.keys()} == clear

        backup.register(app)
        made = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "backups")])
        assert made.exit_code == 0, made.output
        folder = Path(re.search(r"Backup written to (\S+)", made.output).group(1))
        raw = objects(app)
        copied = {path.relative_to(folder / "files").as_posix(): path.read_bytes()
                  for path in (folder / "files").rglob("*") if path.is_file()}
        assert copied == {key.removeprefix("espace/"): value for key, value in raw.items()}  # as stored

        # Restored into an empty database and an empty prefix of the bucket: the same files, still encrypted.
        target = make_restore_target(app, tmp_path, "restored.db")
        with target.app_context():
            backup.restore_backup(folder)
            assert {key: filestore.load(key) for key in filestore.keys()} == clear
            db.session.remove()
            db.engine.dispose()
        assert {key.removeprefix("restored/"): value for key, value in objects(app).items()
                if key.startswith("restored/")} == {key.removeprefix("espace/"): value for key, value in raw.items()}
        # Never into a store that holds files, whatever the database.
        second = make_restore_target(app, tmp_path, "second.db")
        with second.app_context():
            with pytest.raises(backup.BackupError, match=r"S3 bucket \S+ \(prefix restored/, at .*\) is not empty"):
                backup.restore_backup(folder)
            db.session.remove()
            db.engine.dispose()
    finally:
        app.config["DATA_ENCRYPTION_KEYS"] = saved
    assert files_under_files_dir(app) == []


def make_restore_target(app, tmp_path, database: str):
    """A portal on an empty SQLite database whose file store is the prefix restored/ of the same bucket."""
    from app import create_app

    settings = {name: app.config[name] for name in ("FILE_STORAGE", "S3_BUCKET", "S3_ENDPOINT_URL", "S3_REGION",
                                                    *CREDENTIALS)}
    return create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / database}",
                      INSTANCE_DIR=tmp_path / "restored", FILES_DIR=tmp_path / "restored" / "files",
                      MAIL_OUTBOX_DIR=tmp_path / "restored" / "outbox", DATA_ENCRYPTION_KEYS=app.config[
                          "DATA_ENCRYPTION_KEYS"], **settings, S3_PREFIX="restored")
