"""Backup and restore of the portal's data: the database and the file store, with a manifest to verify them by.

    flask --app run backup <dest-dir>        writes <dest-dir>/espace-backup-<UTC time>/ and prints its path
    flask --app run verify-backup <backup>   checks a backup against its manifest (nothing is written)
    flask --app run restore <backup>         restores into an EMPTY database and an EMPTY FILES_DIR, then verifies

A backup folder holds:

- the database: on PostgreSQL `database.dump`, a `pg_dump --format=custom` archive (taken by the pg_dump of the
  server's major version, or a newer one: PG_BINDIR or --pg-bindir names the folder of the client programs); on
  SQLite `database.sqlite3`, a consistent copy made with SQLite's online backup API (never a file copy of a live
  database, which can catch a half-written transaction);
- `files/`: every file of the file store (app.filestore: FILES_DIR, or the S3 bucket when FILE_STORAGE is s3), by
  key, copied byte for byte. They are encrypted at rest already (app.filestore), so they are copied as they are,
  never decrypted;
- `manifest.json`: when, the alembic revision, the database kind, the row count of every table, the size and
  SHA-256 of the database archive and of every file.

On PostgreSQL the row counts and the dump are read from the same snapshot (`pg_export_snapshot()`, then
`pg_dump --snapshot`), so the counts are those of the dump even while the portal keeps writing. The files are
copied after the database: every file a row of the dump names existed when the dump was taken, and the portal only
ever adds files under new random names or replaces one whole (written aside, then renamed), so a copy never catches
half a file.

THE KEYS ARE NOT IN THE BACKUP. DATA_ENCRYPTION_KEYS (the Fernet keys of the files and of the IBANs and TOTP
secrets in the database) must be kept apart, in the secrets store, and kept as long as the backups they open:
a backup restored without them is unreadable, which is also why a stolen backup shows nothing. `restore` checks
that the configured keys open every restored file and encrypted value, and fails saying so when they do not.

Restore refuses a target database that has any table and a FILES_DIR that holds any file: create an empty
database (`createdb`) and point DATABASE_URL and FILES_DIR at them. After restoring it counts the rows of every
table and recomputes the SHA-256 of every file against the manifest, and fails naming each difference.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from app import filestore

FORMAT = "espace-locataire-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES = "files"
DUMP_NAMES = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}
PARTIAL_SUFFIX = ".part"  # app.filestore's file being written: never part of a backup
CHUNK = 1 << 20
MAX_LISTED = 25  # differences named in an error message; the count says how many more
KEYS_NOTE = ("DATA_ENCRYPTION_KEYS is NOT in this backup, by design: the files and the encrypted columns (IBANs, "
             "TOTP secrets) are Fernet tokens that only those keys open. Keep the keys apart, in the secrets store, "
             "for as long as the backups they open.")


class BackupError(RuntimeError):
    """A backup or a restore cannot be made or does not match its manifest; `problems` names each difference."""

    def __init__(self, summary: str, problems: list[str] | None = None):
        self.summary = summary
        self.problems = list(problems or [])
        lines = [summary]
        lines += [f"  - {problem}" for problem in self.problems[:MAX_LISTED]]
        if len(self.problems) > MAX_LISTED:
            lines.append(f"  ... and {len(self.problems) - MAX_LISTED} more")
        super().__init__("\n".join(lines))


@dataclass
class Report:
    path: Path
    manifest: dict
    seconds: float

    @property
    def tables(self) -> int:
        return len(self.manifest["tables"])

    @property
    def rows(self) -> int:
        return sum(self.manifest["tables"].values())

    @property
    def files(self) -> int:
        return len(self.manifest["files"])

    @property
    def bytes(self) -> int:
        return sum(entry["size"] for entry in self.manifest["files"])

    def summary(self) -> str:
        return (f"{self.tables} tables, {self.rows} rows, {self.files} files ({self.bytes} bytes), database "
                f"{self.manifest['database']['size']} bytes, in {self.seconds:.2f} s")


# --- database facts ------------------------------------------------------------------------------------------------

def table_counts(connection) -> dict[str, int]:
    """The row count of every table of the connection's default schema, by table name."""
    names = sorted(sa.inspect(connection).get_table_names())
    return {name: connection.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
            for name in names}


def alembic_revision(connection) -> str | None:
    """The schema's alembic revision (several heads joined by commas), or None without an alembic_version table."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    heads = sorted(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    return ",".join(heads) or None


def user_tables(connection) -> list[str]:
    """Every table of the database outside the system schemas (qualified by schema on PostgreSQL)."""
    inspector = sa.inspect(connection)
    if connection.dialect.name != "postgresql":
        return sorted(inspector.get_table_names())
    tables = []
    for schema in inspector.get_schema_names():
        if schema == "information_schema" or schema.startswith("pg_"):
            continue
        tables += [f"{schema}.{name}" for name in inspector.get_table_names(schema=schema)]
    return sorted(tables)


def _engine():
    from app.extensions import db

    return db.engine


def _forget_connections() -> None:
    """Drop the app's pooled connections, so what follows sees the database as it is now."""
    from app.extensions import db

    db.session.remove()
    db.engine.dispose()


# --- PostgreSQL client programs ------------------------------------------------------------------------------------

def _tool_major(path: Path) -> tuple[int, str] | None:
    try:
        output = subprocess.run([str(path), "--version"], check=False, capture_output=True, text=True,
                                timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", output)
    return (int(match.group(1)), output.strip()) if match else None


def find_pg_tool(name: str, server_major: int, bindir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """(path, version line) of the client program `name` (pg_dump, pg_restore) of PostgreSQL `server_major` or
    newer: in `bindir` only when given, else the server's own version first (Debian and RHEL layouts), then the
    newest installed, then PATH."""
    if bindir:
        candidates = [Path(bindir) / name]
    else:
        installed = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}") + glob.glob(f"/usr/pgsql-*/bin/{name}"),
                           key=lambda p: [int(n) for n in re.findall(r"\d+", p)], reverse=True)
        candidates = [Path(f"/usr/lib/postgresql/{server_major}/bin/{name}"),
                      Path(f"/usr/pgsql-{server_major}/bin/{name}"), *map(Path, installed)]
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path))
    found = []
    for candidate in candidates:
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        version = _tool_major(candidate)
        if version is None:
            continue
        if version[0] >= server_major:
            return candidate, version[1]
        found.append(f"{candidate} ({version[1]})")
    seen = f" (found only older ones: {', '.join(found)})" if found else ""
    raise BackupError(f"no {name} of PostgreSQL {server_major} or newer was found{seen}: install the client "
                      f"programs of PostgreSQL {server_major} (postgresql-client-{server_major}) or name their folder "
                      "with --pg-bindir or PG_BINDIR")


def _libpq(url: sa.engine.URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for `url` without its password, and the environment that carries the password
    (PGPASSWORD: never on a command line, which other users of the machine can read)."""
    uri = sa.engine.URL.create("postgresql", username=url.username, host=url.host, port=url.port,
                               database=url.database, query=url.query).render_as_string(hide_password=False)
    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = str(url.password)
    return uri, environment


def _run_pg_tool(args: list[str], environment: dict[str, str], what: str) -> None:
    result = subprocess.run(args, check=False, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise BackupError(f"{what} failed (exit code {result.returncode})", lines[-MAX_LISTED:])


def _server_major(connection) -> int:
    return int(connection.execute(sa.text("SHOW server_version_num")).scalar_one()) // 10000


# --- files ---------------------------------------------------------------------------------------------------------

def sha256_of(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _copy_stored(key: str, target: Path) -> tuple[int, str]:
    """Copy the stored file `key` of the file store (its bytes as stored, never decrypted) to the new file `target`
    (never overwritten), synced to disk; (size, sha256) of what was copied."""
    raw = filestore.read_raw(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as writer:
        writer.write(raw)
        writer.flush()
        os.fsync(writer.fileno())
    return len(raw), hashlib.sha256(raw).hexdigest()


def _measure_stored(key: str) -> tuple[int, str]:
    raw = filestore.read_raw(key)
    return len(raw), hashlib.sha256(raw).hexdigest()


def stored_files(root: Path) -> list[str]:
    """The relative paths (POSIX) of every file under `root`, sorted, without files being written (.part)."""
    found = []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if name.endswith(PARTIAL_SUFFIX) or not path.is_file():
                continue
            found.append(path.relative_to(root).as_posix())
    return sorted(found)


def _safe_relative(value: str) -> PurePosixPath:
    """A manifest path, refused when it could point outside the folder it belongs to (a forged manifest)."""
    path = PurePosixPath(value)
    if not value or path.is_absolute() or "\\" in value or any(part in ("", ".", "..") for part in value.split("/")):
        raise BackupError(f"the manifest names an unsafe file path: {value!r}")
    return path


# --- backup --------------------------------------------------------------------------------------------------------

def _new_folder(dest: Path, now: datetime) -> tuple[Path, Path]:
    """(the final name, the folder to build it in under a hidden partial name)."""
    dest.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1, 100):
        name = f"espace-backup-{stamp}" + (f"-{attempt}" if attempt > 1 else "")
        final, partial = dest / name, dest / f".{name}.partial"
        if final.exists() or partial.exists():
            continue
        partial.mkdir(mode=0o700)
        os.chmod(partial, 0o700)  # personal data: only the backup's owner reads it, whatever the umask
        return final, partial
    raise BackupError(f"cannot choose a new folder name in {dest}")


def _dump_postgresql(target: Path, pg_bindir) -> dict:
    url = _engine().url
    uri, environment = _libpq(url)
    with _engine().connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        connection.execute(sa.text("SET TRANSACTION READ ONLY"))
        snapshot = connection.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
        server_version = connection.execute(sa.text("SHOW server_version")).scalar_one()
        tool, tool_version = find_pg_tool("pg_dump", _server_major(connection), pg_bindir)
        counts = table_counts(connection)
        revision = alembic_revision(connection)
        # The transaction stays open while pg_dump runs: the exported snapshot lives as long as it does.
        _run_pg_tool([str(tool), "--format=custom", f"--snapshot={snapshot}", "--no-password",
                      f"--file={target}", f"--dbname={uri}"], environment, "pg_dump")
        connection.rollback()
    return {"counts": counts, "revision": revision, "server_version": server_version, "tool": tool_version,
            "source": url.render_as_string(hide_password=True)}


def _sqlite_path(url: sa.engine.URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file::memory:"):
        raise BackupError("the database is an in-memory SQLite database: there is nothing on disk to back up or "
                          "restore into")
    return Path(url.database).resolve()


def _dump_sqlite(target: Path) -> dict:
    url = _engine().url
    source_path = _sqlite_path(url)
    if not source_path.is_file():
        raise BackupError(f"the SQLite database {source_path} does not exist")
    source = sqlite3.connect(source_path.as_uri() + "?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # SQLite's online backup: one consistent state, even while the portal writes
    finally:
        copy.close()
        source.close()
    engine = sa.create_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as connection:  # the facts of the copy itself, so they are those of the backup
            counts, revision = table_counts(connection), alembic_revision(connection)
    finally:
        engine.dispose()
    return {"counts": counts, "revision": revision, "server_version": sqlite3.sqlite_version,
            "tool": f"sqlite3 online backup API (SQLite {sqlite3.sqlite_version})", "source": str(source_path)}


def create_backup(dest: Path, pg_bindir: str | None = None) -> Report:
    """Back up the app's database and FILES_DIR into a new folder under `dest` (inside an app context)."""
    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    kind = _engine().dialect.name
    if kind not in DUMP_NAMES:
        raise BackupError(f"backups support PostgreSQL and SQLite, not {kind}")
    final, partial = _new_folder(Path(dest), now)
    try:
        dump_path = partial / DUMP_NAMES[kind]
        facts = _dump_postgresql(dump_path, pg_bindir) if kind == "postgresql" else _dump_sqlite(dump_path)
        os.chmod(dump_path, 0o600)
        size, digest = sha256_of(dump_path)
        files = []
        for relative in filestore.keys():
            try:
                file_size, file_digest = _copy_stored(relative, partial / FILES / _safe_relative(relative))
            except FileNotFoundError:  # removed since it was listed (a regenerated document's old file)
                continue
            files.append({"path": relative, "size": file_size, "sha256": file_digest})
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": now.isoformat(timespec="seconds"),
            "alembic_revision": facts["revision"],
            "database": {"kind": kind, "file": DUMP_NAMES[kind], "size": size, "sha256": digest,
                         "server_version": facts["server_version"], "made_with": facts["tool"],
                         "source": facts["source"]},
            "tables": facts["counts"],
            "files": files,
            "totals": {"tables": len(facts["counts"]), "rows": sum(facts["counts"].values()), "files": len(files),
                       "bytes": sum(entry["size"] for entry in files)},
            "encryption_keys": KEYS_NOTE,
        }
        _write_manifest(partial / MANIFEST, manifest)
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Report(final, manifest, time.perf_counter() - started)


def _write_manifest(path: Path, manifest: dict) -> None:
    with open(path, "x", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=2, ensure_ascii=False)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.chmod(path, 0o600)


# --- verification --------------------------------------------------------------------------------------------------

def read_manifest(backup: Path) -> dict:
    path = Path(backup) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{backup} is not a backup: it has no {MANIFEST}") from None
    except (ValueError, UnicodeError) as error:
        raise BackupError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not the manifest of an Espace locataire backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path} has format version {manifest.get('format_version')!r}; this version of the "
                          f"portal reads version {FORMAT_VERSION}")
    if manifest.get("database", {}).get("kind") not in DUMP_NAMES:
        raise BackupError(f"{path} names an unknown database kind")
    for entry in manifest.get("files", []):
        _safe_relative(entry["path"])
    return manifest


def verify_backup(backup: Path) -> dict:
    """Check a backup folder against its manifest (database archive and every file: size and SHA-256, nothing
    missing, nothing extra); returns the manifest, raises BackupError naming every difference."""
    backup = Path(backup)
    manifest = read_manifest(backup)
    problems = []
    database = manifest["database"]
    dump = backup / database["file"]
    if not dump.is_file():
        problems.append(f"{database['file']}: missing")
    else:
        size, digest = sha256_of(dump)
        if (size, digest) != (database["size"], database["sha256"]):
            problems.append(f"{database['file']}: {size} bytes, sha256 {digest}; the manifest says "
                            f"{database['size']} bytes, sha256 {database['sha256']}")
    problems += compare_files(backup / FILES, manifest["files"])
    if problems:
        raise BackupError(f"the backup {backup} does not match its manifest ({len(problems)} differences)",
                          problems)
    return manifest


def compare_files(root: Path | None, expected: list[dict]) -> list[str]:
    """The differences between the files under `root` (None: the app's file store) and the manifest's list (missing,
    extra, size, sha256)."""
    problems = []
    listed = {entry["path"]: entry for entry in expected}
    if root is None:
        present, measure = set(filestore.keys()), _measure_stored
    else:
        present = set(stored_files(root)) if root.is_dir() else set()
        measure = lambda relative: sha256_of(root / _safe_relative(relative))  # noqa: E731
    for relative, entry in sorted(listed.items()):
        if relative not in present:
            problems.append(f"{FILES}/{relative}: missing")
            continue
        size, digest = measure(relative)
        if digest != entry["sha256"] or size != entry["size"]:
            problems.append(f"{FILES}/{relative}: sha256 {digest} ({size} bytes) differs from the manifest's "
                            f"{entry['sha256']} ({entry['size']} bytes)")
    problems += [f"{FILES}/{relative}: not in the manifest" for relative in sorted(present - set(listed))]
    return problems


def verify_restore(manifest: dict) -> None:
    """Check the app's database and FILES_DIR against a backup's manifest: the same tables with the same row
    counts, the same alembic revision, every file with the same size and SHA-256 and no other file."""
    _forget_connections()
    problems = []
    with _engine().connect() as connection:
        counts = table_counts(connection)
        revision = alembic_revision(connection)
    if revision != manifest["alembic_revision"]:
        problems.append(f"alembic revision {revision!r}; the manifest says {manifest['alembic_revision']!r}")
    for table, expected in sorted(manifest["tables"].items()):
        if table not in counts:
            problems.append(f"table {table}: missing")
        elif counts[table] != expected:
            problems.append(f"table {table}: {counts[table]} rows; the manifest says {expected}")
    problems += [f"table {table}: not in the manifest" for table in sorted(set(counts) - set(manifest["tables"]))]
    problems += compare_files(None, manifest["files"])
    if problems:
        raise BackupError(f"the restored data does not match the backup ({len(problems)} differences)", problems)


def check_keys() -> tuple[int, int, list[str]]:
    """Whether DATA_ENCRYPTION_KEYS opens every stored file and every encrypted column value: (files checked,
    values checked, what does not open)."""
    from app import crypto
    from app.dbtypes import EncryptedString
    from app.extensions import db

    problems = []
    relatives = filestore.keys()
    for relative in relatives:
        try:
            filestore.load(relative)
        except crypto.DecryptionError:
            problems.append(f"{FILES}/{relative}: does not decrypt with DATA_ENCRYPTION_KEYS")
    values = 0
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, EncryptedString):
                    continue
                (key,) = table.primary_key.columns
                raw = sa.table(table.name, sa.column(key.name), sa.column(column.name, sa.String))
                query = sa.select(raw.c[key.name], raw.c[column.name]).where(raw.c[column.name].is_not(None))
                for row_key, token in connection.execute(query):
                    values += 1
                    try:
                        crypto.decrypt(token)
                    except crypto.DecryptionError:
                        problems.append(f"{table.name}.{column.name} of row {row_key}: does not decrypt with "
                                        "DATA_ENCRYPTION_KEYS")
    return len(relatives), values, problems


# --- restore -------------------------------------------------------------------------------------------------------

def _refuse_non_empty_target(kind: str) -> None:
    engine = _engine()
    if engine.dialect.name != kind:
        raise BackupError(f"this backup holds a {kind} database; DATABASE_URL points at {engine.dialect.name}: "
                          "restore it into the same kind of database")
    if kind == "sqlite":
        path = _sqlite_path(engine.url)
        tables = []
        if path.exists():
            connection = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
            try:
                tables = [name for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            finally:
                connection.close()
    else:
        _forget_connections()
        with engine.connect() as connection:
            tables = user_tables(connection)
    if tables:
        shown = ", ".join(tables[:8]) + (f" and {len(tables) - 8} more" if len(tables) > 8 else "")
        how = "createdb a new one" if kind == "postgresql" else "name a new file"
        raise BackupError(f"the target database {engine.url.render_as_string(hide_password=True)} is not empty "
                          f"({len(tables)} tables: {shown}): restore only into an empty database ({how} and point "
                          "DATABASE_URL at it)")
    root = Path(current_app.config["FILES_DIR"])
    if current_app.config["FILE_STORAGE"] == "folder" and root.exists() and not root.is_dir():
        raise BackupError(f"FILES_DIR {root} is not a folder")
    present = filestore.keys()
    if present:
        raise BackupError(f"{filestore.describe()} is not empty ({len(present)} files, first {present[0]}): "
                          "restore only into an empty file store")


def _restore_postgresql(dump: Path, manifest: dict, pg_bindir) -> None:
    engine = _engine()
    uri, environment = _libpq(engine.url)
    with engine.connect() as connection:
        server_major = _server_major(connection)
    tool, tool_version = find_pg_tool("pg_restore", server_major, pg_bindir)
    made_with = re.search(r"\(PostgreSQL\)\s+(\d+)", manifest["database"].get("made_with", ""))
    restore_major = int(re.search(r"\(PostgreSQL\)\s+(\d+)", tool_version).group(1))
    if made_with and int(made_with.group(1)) > restore_major:
        raise BackupError(f"the dump was made by {manifest['database']['made_with']}; {tool} is "
                          f"{tool_version}: use a pg_restore at least as new (--pg-bindir or PG_BINDIR)")
    _forget_connections()
    # One transaction: a failed restore leaves the target empty. Objects belong to the role of DATABASE_URL.
    _run_pg_tool([str(tool), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                  "--no-password", f"--dbname={uri}", str(dump)], environment, "pg_restore")


def _restore_sqlite(dump: Path) -> None:
    target = _sqlite_path(_engine().url)
    _forget_connections()
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(dump.resolve().as_uri() + "?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


def restore_backup(backup: Path, pg_bindir: str | None = None, keys: bool = True) -> Report:
    """Restore a backup into the app's (empty) database and (empty) FILES_DIR, then verify it against the manifest
    and, with `keys`, that DATA_ENCRYPTION_KEYS opens what was restored (inside an app context)."""
    started = time.perf_counter()
    backup = Path(backup)
    manifest = verify_backup(backup)  # a damaged backup is refused before anything is written
    kind = manifest["database"]["kind"]
    _refuse_non_empty_target(kind)
    dump = backup / manifest["database"]["file"]
    if kind == "postgresql":
        _restore_postgresql(dump, manifest, pg_bindir)
    else:
        _restore_sqlite(dump)
    for entry in manifest["files"]:
        relative = _safe_relative(entry["path"])
        filestore.write_raw(relative.as_posix(), (backup / FILES / relative).read_bytes())  # whole or not at all
    verify_restore(manifest)
    if keys:
        _files, _values, problems = check_keys()
        if problems:
            raise BackupError(f"the data is restored and matches the backup, but {len(problems)} files or values do "
                              "not open with DATA_ENCRYPTION_KEYS: set the keys they were encrypted with (they are "
                              "never in a backup)", problems)
    return Report(backup, manifest, time.perf_counter() - started)


# --- command line --------------------------------------------------------------------------------------------------

PG_BINDIR_OPTION = click.option(
    "--pg-bindir", envvar="PG_BINDIR", type=click.Path(file_okay=False, exists=True),
    help="Folder of pg_dump and pg_restore (default: the server's version, found in the usual places or PATH).")


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, writable=True))
@PG_BINDIR_OPTION
@with_appcontext
def backup_command(dest: str, pg_bindir: str | None):
    """Back up the database and FILES_DIR into a new folder under DEST (DATA_ENCRYPTION_KEYS is not in it)."""
    try:
        report = create_backup(Path(dest), pg_bindir)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Backup written to {report.path}")
    click.echo(f"  {report.summary()}")
    click.echo(f"  alembic revision {report.manifest['alembic_revision']}, "
               f"{report.manifest['database']['kind']} ({report.manifest['database']['made_with']})")
    click.echo("  DATA_ENCRYPTION_KEYS is not in the backup: keep it apart, it is needed to read the restored data.")


@click.command("verify-backup")
@click.argument("backup", type=click.Path(file_okay=False, exists=True))
@with_appcontext
def verify_backup_command(backup: str):
    """Check a backup folder against its manifest: database archive and every file (size and SHA-256)."""
    started = time.perf_counter()
    try:
        manifest = verify_backup(Path(backup))
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    report = Report(Path(backup), manifest, time.perf_counter() - started)
    click.echo(f"Backup {backup} of {manifest['created_at']} matches its manifest: {report.summary()}")


@click.command("restore")
@click.argument("backup", type=click.Path(file_okay=False, exists=True))
@PG_BINDIR_OPTION
@click.option("--skip-key-check", is_flag=True,
              help="Do not check that DATA_ENCRYPTION_KEYS opens the restored files and encrypted values.")
@with_appcontext
def restore_command(backup: str, pg_bindir: str | None, skip_key_check: bool):
    """Restore BACKUP into the EMPTY database of DATABASE_URL and the EMPTY FILES_DIR, then verify every table's
    row count and every file's SHA-256 against the manifest."""
    try:
        report = restore_backup(Path(backup), pg_bindir, keys=not skip_key_check)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    manifest = report.manifest
    click.echo(f"Restored {backup} (made {manifest['created_at']}, alembic revision {manifest['alembic_revision']}) "
               f"into {_engine().url.render_as_string(hide_password=True)} and "
               f"{filestore.describe()}")
    click.echo(f"  verified: {report.summary()}")
    if not skip_key_check:
        click.echo("  DATA_ENCRYPTION_KEYS opens every restored file and encrypted value.")


COMMANDS = (backup_command, verify_backup_command, restore_command)


def register(app: Flask) -> None:
    """Add `backup`, `verify-backup` and `restore` to `flask --app run` (idempotent)."""
    for command in COMMANDS:
        if command.name not in app.cli.commands:
            app.cli.add_command(command)
