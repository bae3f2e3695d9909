"""Backup and restore drill (issue 13, point 5): back up a filled database and file store, restore them into a NEW
PostgreSQL cluster and an empty folder, and prove the copy equal (every row of every table, every file's SHA-256)
and working (the restored app decrypts and serves a stored file). Also: a SQLite round trip, a restore refused
into a non-empty database or folder, a tampered backup named by its file, a restore without the keys refused.

The PostgreSQL source is a database of its own on the session's cluster (tests/conftest.py `postgres_url`); the
restore target is a second cluster started here from the same binaries and stopped at the end, even on failure.
The real `flask` command runs in a subprocess through a three-line wrapper (until app/cli.py registers the
commands, `flask --app run` does not know them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from app import backup, create_app, filestore
from app.extensions import db
from config import TestingConfig
from tests.conftest import PostgresCluster, _pg_bin, login, make_app
from tests.samples import pdf_bytes, png_bytes

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = """from app import create_app
from app.backup import register
app = create_app()
register(app)
"""


# --- helpers -------------------------------------------------------------------------------------------------------

def server_url(url: str, database: str) -> str:
    return sa.engine.make_url(url).set(database=database).render_as_string(hide_password=False)


def create_database(url: str, name: str) -> str:
    """A new empty database `name` on the server of `url`; returns its URL."""
    admin = sa.create_engine(server_url(url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return server_url(url, name)


def drop_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(server_url(url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def contents(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, sorted by primary key (by every column for a table without one)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            tables = {}
            for table in metadata.sorted_tables:
                order = list(table.primary_key.columns) or list(table.columns)
                tables[table.name] = [tuple(row) for row in connection.execute(sa.select(table).order_by(*order))]
            return tables
    finally:
        engine.dispose()


def file_digests(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def fill(app) -> dict:
    """The demo landlord plus real files written the production way (uploads and a rendered document, encrypted by
    app.filestore). Returns ids and the clear bytes of each file, by stored name."""
    from app.models import (
        Attachment, DirectDebitMandate, Document, DocumentKind, Household, InsuranceCertificate, RequestEvent,
        TenantRequest,
    )
    from app.services import documents, uploads
    from app.services.demo import client_number, seed_demo

    with app.app_context():
        seed_demo(6, echo=lambda *_: None)
        household = db.session.scalar(sa.select(Household).where(Household.client_number == client_number(0)))
        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == household.id))
        uploads.store(uploads.CheckedFile(uploads.PDF, pdf_bytes(), "rib.pdf"), mandate)
        certificate = db.session.scalar(sa.select(InsuranceCertificate).where(
            InsuranceCertificate.household_id == household.id))
        uploads.store(uploads.CheckedFile(uploads.PDF, pdf_bytes() + b"\n% assurance", "assurance.pdf"), certificate)
        event = db.session.scalar(sa.select(RequestEvent).join(TenantRequest).where(
            TenantRequest.household_id == household.id).order_by(RequestEvent.id))
        attachment = Attachment(event_id=event.id)
        uploads.store(uploads.CheckedFile(uploads.PNG, png_bytes(), "fuite.png"), attachment)
        db.session.add(attachment)
        document = db.session.scalar(sa.select(Document).where(
            Document.household_id == household.id, Document.kind == DocumentKind.DUE_NOTICE).order_by(Document.id))
        documents.ensure_file(document)  # rendered by wkhtmltopdf and stored, as on a tenant's first download
        db.session.commit()
        root = Path(app.config["FILES_DIR"])
        clear = {path.name: filestore.load(path) for path in root.rglob("*") if path.is_file()}
        assert len(clear) == 4 and all(path.read_bytes().startswith(b"gAAAAA") for path in root.rglob("*")
                                       if path.is_file())
        return {"document": document.id, "stored_name": document.stored_name, "clear": clear}


def new_app(url: str, tmp: Path, **overrides):
    """An app on an existing database (no migration, no permission sync: nothing written)."""
    settings = {"INSTANCE_DIR": tmp, "FILES_DIR": tmp / "files", "MAIL_OUTBOX_DIR": tmp / "outbox", **overrides}
    return create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI=url, **settings)


def dispose(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def flask_cli(tmp: Path, url: str, files: Path, *args: str) -> subprocess.CompletedProcess:
    """`flask --app <wrapper> ARGS` in a new process, on the database `url` and the file store `files`."""
    wrapper = tmp / "backup_wrapper.py"
    if not wrapper.exists():
        wrapper.write_text(WRAPPER)
    environment = dict(os.environ, APP_ENV="testing", TEST_DATABASE_URL=url, FILES_DIR=str(files),
                       INSTANCE_DIR=str(tmp / "instance"), MAIL_OUTBOX_DIR=str(tmp / "outbox"),
                       PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "flask", "--app", str(wrapper), *args], check=False, cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)


def written_to(output: str) -> Path:
    [line] = [line for line in output.splitlines() if line.startswith("Backup written to ")]
    return Path(line.removeprefix("Backup written to "))


# --- fixtures ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_source(postgres_url, tmp_path_factory):
    """A filled PostgreSQL database of its own (on the session's cluster) and its file store."""
    tmp = tmp_path_factory.mktemp("backup-pg-source")
    url = create_database(postgres_url, "espace_backup_source")
    app = make_app(url, tmp)
    try:
        app.filled = fill(app)
        yield app
    finally:
        dispose(app)
        drop_database(url)


@pytest.fixture(scope="module")
def new_cluster():
    """A second PostgreSQL cluster, new and empty, for the restores; stopped at the end whatever happens."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found: the restore drill needs a second cluster")
    cluster = PostgresCluster(bindir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def sqlite_source(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backup-sqlite-source")
    app = make_app(f"sqlite:///{tmp / 'source.db'}", tmp)
    backup.register(app)
    try:
        app.filled = fill(app)
        yield app
    finally:
        dispose(app)


@pytest.fixture(scope="module")
def sqlite_backup(sqlite_source, tmp_path_factory):
    result = sqlite_source.test_cli_runner().invoke(args=["backup", str(tmp_path_factory.mktemp("sqlite-backups"))])
    assert result.exit_code == 0, result.output
    return written_to(result.output)


# --- the drill on PostgreSQL ---------------------------------------------------------------------------------------

def test_postgresql_drill_backup_then_restore_into_a_new_cluster(pg_source, new_cluster, tmp_path):
    source_url = pg_source.config["SQLALCHEMY_DATABASE_URI"]
    source_files = Path(pg_source.config["FILES_DIR"])
    backup_cmd = flask_cli(tmp_path, source_url, source_files, "backup", str(tmp_path / "backups"))
    assert backup_cmd.returncode == 0, backup_cmd.stderr
    folder = written_to(backup_cmd.stdout)
    assert "tables," in backup_cmd.stdout and "DATA_ENCRYPTION_KEYS is not in the backup" in backup_cmd.stdout
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["database"]["kind"] == "postgresql" and (folder / "database.dump").read_bytes()[:5] == b"PGDMP"
    assert manifest["database"]["made_with"].startswith("pg_dump (PostgreSQL) ")
    assert len(manifest["files"]) == 4 and manifest["totals"]["files"] == 4
    assert oct(folder.stat().st_mode & 0o777) == "0o700"

    target_url = create_database(new_cluster, "espace_restored")
    target_files = tmp_path / "restored-files"
    restore_cmd = flask_cli(tmp_path, target_url, target_files, "restore", str(folder))
    assert restore_cmd.returncode == 0, restore_cmd.stderr
    assert "verified:" in restore_cmd.stdout and "opens every restored file" in restore_cmd.stdout

    # Every row of every table, and every file, equal.
    source, restored = contents(source_url), contents(target_url)
    assert sorted(source) == sorted(restored) and len(source) == len(manifest["tables"])
    for table in source:
        assert restored[table] == source[table], table
    assert {table: len(rows) for table, rows in restored.items()} == manifest["tables"]
    assert len(restored["household"]) == 6 and restored["document"] and restored["ab_user"]
    assert file_digests(target_files) == file_digests(source_files)
    assert file_digests(target_files) == {entry["path"]: entry["sha256"] for entry in manifest["files"]}

    # The restored app works: it decrypts a stored file, and a tenant downloads the rendered document.
    restored_app = new_app(target_url, tmp_path / "restored-app", FILES_DIR=target_files)
    try:
        filled = pg_source.filled
        with restored_app.app_context():
            from app.models import Document
            from app.services import documents

            document = db.session.get(Document, filled["document"])
            assert document.stored_name == filled["stored_name"]
            assert filestore.load(documents.stored_path(document)) == filled["clear"][document.stored_name]
            for path in (p for p in target_files.rglob("*") if p.is_file()):
                assert filestore.load(path) == filled["clear"][path.name]
        client = restored_app.test_client()
        assert login(client, "locataire@example.org").status_code == 302  # writes a session row: sequences work
        response = client.get(f"/documents/{filled['document']}")
        assert response.status_code == 200 and response.data == filled["clear"][filled["stored_name"]]
        assert file_digests(target_files) == file_digests(source_files)  # served from the restored file
    finally:
        dispose(restored_app)


def test_restore_refuses_a_non_empty_database_or_files_dir(pg_source, sqlite_backup, new_cluster, tmp_path):
    backup.register(pg_source)
    manifest = json.loads((sqlite_backup / "manifest.json").read_text())
    result = pg_source.test_cli_runner().invoke(args=["restore", str(sqlite_backup)])
    assert result.exit_code != 0 and "holds a sqlite database" in result.output  # the wrong kind of database

    with pg_source.app_context():  # a PostgreSQL backup back into its own source: refused, nothing touched
        before = backup.table_counts(db.session.connection())
        pg_backup = backup.create_backup(tmp_path / "backups")
        with pytest.raises(backup.BackupError, match=r"espace_backup_source is not empty \(\d+ tables: public\.ab_"):
            backup.restore_backup(pg_backup.path)
        db.session.remove()
        assert backup.table_counts(db.session.connection()) == before

    target = new_app(f"sqlite:///{tmp_path / 'target.db'}", tmp_path / "target")
    backup.register(target)
    try:
        with target.app_context():
            from flask_migrate import upgrade

            upgrade()  # the schema alone: tables, no data
        refused = target.test_cli_runner().invoke(args=["restore", str(sqlite_backup)])
        assert refused.exit_code != 0 and "is not empty" in refused.output and "ab_permission" in refused.output
        dispose(target)
        (tmp_path / "target.db").unlink()
        leftover = tmp_path / "target" / "files" / "documents" / "old.pdf"
        leftover.parent.mkdir(parents=True)
        leftover.write_bytes(b"an older file")
        refused = target.test_cli_runner().invoke(args=["restore", str(sqlite_backup)])
        assert refused.exit_code != 0 and "FILES_DIR" in refused.output and "documents/old.pdf" in refused.output
        assert not (tmp_path / "target.db").exists() or contents(f"sqlite:///{tmp_path / 'target.db'}") == {}
        leftover.unlink()
        restored = target.test_cli_runner().invoke(args=["restore", str(sqlite_backup)])
        assert restored.exit_code == 0, restored.output
        assert f"{len(manifest['files'])} files" in restored.output
    finally:
        dispose(target)


# --- SQLite round trip ---------------------------------------------------------------------------------------------

def test_sqlite_round_trip(sqlite_source, sqlite_backup, tmp_path):
    manifest = json.loads((sqlite_backup / "manifest.json").read_text())
    with sqlite_source.app_context(), db.engine.connect() as connection:
        assert manifest["tables"] == backup.table_counts(connection)
        assert manifest["alembic_revision"] == backup.alembic_revision(connection) is not None
    assert manifest["database"]["kind"] == "sqlite" and manifest["created_at"].endswith("+00:00")
    assert {entry["path"].split("/")[0] for entry in manifest["files"]} == {"uploads", "documents"}
    assert all(set(entry) == {"path", "size", "sha256"} for entry in manifest["files"])
    assert "NOT in this backup" in manifest["encryption_keys"]
    key = sqlite_source.config["DATA_ENCRYPTION_KEYS"].encode()
    assert not any(key in path.read_bytes() for path in sqlite_backup.rglob("*") if path.is_file())

    target = new_app(f"sqlite:///{tmp_path / 'restored.db'}", tmp_path)
    backup.register(target)
    try:
        result = target.test_cli_runner().invoke(args=["restore", str(sqlite_backup)])
        assert result.exit_code == 0, result.output
        assert f"{len(manifest['tables'])} tables, {manifest['totals']['rows']} rows, 4 files" in result.output
        source = contents(sqlite_source.config["SQLALCHEMY_DATABASE_URI"])
        assert contents(f"sqlite:///{tmp_path / 'restored.db'}") == source
        assert file_digests(tmp_path / "files") == file_digests(Path(sqlite_source.config["FILES_DIR"]))
        with target.app_context():
            for path in (p for p in (tmp_path / "files").rglob("*") if p.is_file()):
                assert filestore.load(path) == sqlite_source.filled["clear"][path.name]
    finally:
        dispose(target)


# --- damage and mistakes, found and named --------------------------------------------------------------------------

def test_a_tampered_backup_is_named_and_never_restored(sqlite_source, sqlite_backup, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(sqlite_backup, tampered)
    manifest = json.loads((tampered / "manifest.json").read_text())
    victim = next(entry["path"] for entry in manifest["files"] if entry["path"].startswith("uploads/"))
    raw = bytearray((tampered / "files" / victim).read_bytes())
    raw[40] ^= 0x01  # one bit of one file
    (tampered / "files" / victim).write_bytes(bytes(raw))

    result = sqlite_source.test_cli_runner().invoke(args=["verify-backup", str(tampered)])
    assert result.exit_code != 0 and f"files/{victim}: sha256" in result.output and "1 differences" in result.output
    assert sqlite_source.test_cli_runner().invoke(args=["verify-backup", str(sqlite_backup)]).exit_code == 0

    target = new_app(f"sqlite:///{tmp_path / 'restored.db'}", tmp_path)
    backup.register(target)
    try:
        refused = target.test_cli_runner().invoke(args=["restore", str(tampered)])
        assert refused.exit_code != 0 and victim in refused.output
        assert not (tmp_path / "restored.db").exists() and not (tmp_path / "files").exists()  # nothing written

        # After a good restore, damage to the restored data is found and named too.
        assert target.test_cli_runner().invoke(args=["restore", str(sqlite_backup)]).exit_code == 0
        (tmp_path / "files" / victim).write_bytes(b"not the same")
        (tmp_path / "files" / "documents" / "stray.pdf").write_bytes(b"stray")
        (tmp_path / "files" / manifest["files"][-1]["path"]).unlink()
        with target.app_context():
            db.session.execute(sa.text("DELETE FROM household_note"))
            db.session.commit()
            with pytest.raises(backup.BackupError) as error:
                backup.verify_restore(manifest)
        message = str(error.value)
        assert f"files/{victim}: sha256" in message and "files/documents/stray.pdf: not in the manifest" in message
        assert f"files/{manifest['files'][-1]['path']}: missing" in message
        assert f"table household_note: 0 rows; the manifest says {manifest['tables']['household_note']}" in message
    finally:
        dispose(target)


def test_a_forged_manifest_path_is_refused(sqlite_backup, tmp_path):
    forged = tmp_path / "forged"
    shutil.copytree(sqlite_backup, forged)
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest["files"][0]["path"] = "../../outside.pdf"
    (forged / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match="unsafe file path"):
        backup.verify_backup(forged)


def test_restore_without_the_encryption_keys_says_so(sqlite_backup, tmp_path):
    target = new_app(f"sqlite:///{tmp_path / 'restored.db'}", tmp_path,
                     DATA_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    backup.register(target)
    try:
        result = target.test_cli_runner().invoke(args=["restore", str(sqlite_backup)])
        assert result.exit_code != 0 and "do not open with DATA_ENCRYPTION_KEYS" in result.output
        assert "direct_debit_mandate.iban of row" in result.output and "files/documents/" in result.output
    finally:
        dispose(target)


def test_pg_dump_older_than_the_server_is_refused(tmp_path):
    fake = tmp_path / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    fake.chmod(0o755)
    with pytest.raises(backup.BackupError, match=r"no pg_dump of PostgreSQL 15 or newer .*9\.6\.24"):
        backup.find_pg_tool("pg_dump", 15, tmp_path)
