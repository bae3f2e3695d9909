"""The portal's file store: every stored file (uploads, generated documents, card receipts, pain.008 bank files),
encrypted at rest, in a folder or in S3-compatible object storage.

Uploaded RIBs, mandate PDFs and pain.008 files carry full IBANs; certificates, quittances and requests' photos carry
names, addresses and more. Every file is stored as one Fernet token under the data key (app.crypto,
DATA_ENCRYPTION_KEYS), encrypted HERE, above the backend: a copy of the disk, of the bucket or of a backup shows
nothing without the key, whatever the storage provider does or does not encrypt. A file written before encryption
came (in clear) still reads; `flask rotate-encryption-key` encrypts those and re-encrypts files under an older key
(`rotate_all`).

A file is named by a relative KEY, `<kind>/<stored name>`: "documents/ab12….pdf", "uploads/….png",
"payments/….pdf", "sepa/….xml". Rows store only the name; the kind's folder is the key's prefix, the layout
FILES_DIR always had, so the keys of older rows are their old paths under FILES_DIR.

    save(key, data)                        store `data` (encrypted), whole or not at all, replacing any older one
    load(key)                              the clear bytes (FileNotFoundError when there is no such file)
    exists(key), delete(key)               delete: nothing to do when it is already gone
    attachment(key, mimetype, filename)    a download response (a 404 when the file is gone)
    keys(prefix="")                        the stored keys, sorted (rotation, backup)
    read_raw(key), write_raw(key, raw)     the stored bytes as they are, never decrypted (backup, restore, rotation)

FILE_STORAGE picks the backend:

- `folder` (default): files under FILES_DIR (`<FILES_DIR>/documents/ab12….pdf`). Each file is written aside
  (`….<random>.part`, synced) then renamed over its name, so it appears whole or not at all; a key ending in `.part`
  is never listed. With several web machines FILES_DIR must be one shared volume (NFS…) mounted by all of them.
- `s3`: objects `<S3_PREFIX><key>` in the bucket S3_BUCKET, through boto3: Amazon S3 or any S3-compatible service
  (MinIO, Ceph RGW, OVHcloud, Scaleway…: S3_ENDPOINT_URL, S3_REGION). Credentials: S3_ACCESS_KEY_ID and
  S3_SECRET_ACCESS_KEY, or else boto3's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an
  instance role). A PUT is atomic: an object is whole or absent. The client is made once per app and process, on
  first use. The objects are the same Fernet tokens as the files (a token authenticates itself: a damaged object
  fails to decrypt instead of giving wrong bytes).

Backend failures (disk, network, provider) raise StorageError, an OSError, or OSError itself for the folder.
"""

from __future__ import annotations

import io
import os
import secrets
import threading
from pathlib import Path

from flask import Response, abort, current_app, send_file

from app import crypto
from config import ConfigError

TOKEN_PREFIX = b"gAAAAA"  # every Fernet token: version byte 0x80, then a timestamp whose high bytes are zero
PARTIAL_SUFFIX = ".part"
BACKENDS = ("folder", "s3")
ADDRESSING_STYLES = ("auto", "path", "virtual")
MAX_KEY_LENGTH = 512


class StorageError(OSError):
    """The file store failed (a provider's error, an unreachable endpoint); the message names no secret."""


# --- the API -------------------------------------------------------------------------------------------------------

def save(key: str, data: bytes) -> None:
    """Store `data` encrypted under `key`: whole or not at all, replacing what the key held."""
    _store().write(_key(key), crypto.encrypt_bytes(data))


def load(key: str) -> bytes:
    """The clear content of a stored file (FileNotFoundError if there is none, crypto.DecryptionError if no key of
    DATA_ENCRYPTION_KEYS opens it)."""
    raw = _store().read(_key(key))
    return crypto.decrypt_bytes(raw) if raw.startswith(TOKEN_PREFIX) else raw


def exists(key: str) -> bool:
    return _store().exists(_key(key))


def delete(key: str) -> None:
    """Remove a stored file; nothing happens when it is already gone."""
    _store().delete(_key(key))


def attachment(key: str, mimetype: str, filename: str) -> Response:
    """A stored file as a download: an attachment (never rendered by the browser), never cached; a 404 when the file
    is gone."""
    try:
        data = load(key)
    except FileNotFoundError:
        abort(404)
    response = send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=filename)
    response.headers["Cache-Control"] = "no-store"
    return response


def keys(prefix: str = "") -> list[str]:
    """Every stored key starting with `prefix` ("documents/", or "" for all), sorted; files being written are not
    listed."""
    if prefix:
        _check_key(prefix, prefix=True)
    return _store().keys(prefix)


def read_raw(key: str) -> bytes:
    """The stored bytes as they are (a Fernet token, or a file from before encryption): copied, never decrypted."""
    return _store().read(_key(key))


def write_raw(key: str, raw: bytes) -> None:
    """Store bytes as they are, whole or not at all: a backup's files, a token re-encrypted by the rotation."""
    _store().write(_key(key), raw)


def describe() -> str:
    """Where the files are, for messages: "FILES_DIR /srv/files" or "S3 bucket espace (prefix prod/, at
    https://s3.example)" (never a credential)."""
    return _store().description


def rotate_all() -> tuple[int, int, int]:
    """Encrypt the files still in clear and re-encrypt those under an older key, one file at a time (each replaced
    whole). Returns (files seen, encrypted from clear, re-encrypted)."""
    store = _store()
    seen = encrypted = rotated = 0
    for key in store.keys(""):
        try:
            raw = store.read(key)
        except FileNotFoundError:  # deleted since it was listed (a regenerated document's old file)
            continue
        seen += 1
        if not raw.startswith(TOKEN_PREFIX):
            store.write(key, crypto.encrypt_bytes(raw))
            encrypted += 1
        elif not crypto.is_current_bytes(raw):
            store.write(key, crypto.rotate_bytes(raw))
            rotated += 1
    return seen, encrypted, rotated


def settings_problem(config) -> str | None:
    """What makes the file-store settings of `config` (a mapping or a config class) unusable, or None."""
    get = config.get if hasattr(config, "get") else lambda name, default=None: getattr(config, name, default)
    kind = get("FILE_STORAGE") or "folder"
    if kind not in BACKENDS:
        return f"FILE_STORAGE must be folder or s3, got {kind!r}"
    if kind != "s3":
        return None
    if not get("S3_BUCKET"):
        return "S3_BUCKET is not set while FILE_STORAGE is s3: name the bucket the files go to"
    if bool(get("S3_ACCESS_KEY_ID")) != bool(get("S3_SECRET_ACCESS_KEY")):
        return ("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both, or neither (then boto3 reads "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role)")
    style = get("S3_ADDRESSING_STYLE")
    if style and style not in ADDRESSING_STYLES:
        return f"S3_ADDRESSING_STYLE must be auto, path or virtual, got {style!r}"
    endpoint = get("S3_ENDPOINT_URL")
    if endpoint and not endpoint.startswith(("https://", "http://")):
        return f"S3_ENDPOINT_URL must be an http(s):// address, got {endpoint!r}"
    return None


# --- keys ----------------------------------------------------------------------------------------------------------

def _key(key) -> str:
    """`key` checked; a path under FILES_DIR (what a walk of the folder gives, os.PathLike) is taken as its key."""
    if isinstance(key, os.PathLike):
        path = Path(key)
        if path.is_absolute():
            root = Path(current_app.config["FILES_DIR"]).resolve()
            try:
                path = path.resolve().relative_to(root)
            except ValueError:
                raise ValueError("a stored file's path must be under FILES_DIR") from None
        key = path.as_posix()
    _check_key(key)
    return key


def _check_key(key, prefix: bool = False) -> None:
    """A key is relative and stays inside the store: no empty, "." or ".." part, no backslash or control
    character (a prefix may end with "/")."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"not a file store key: {key!r}")
    parts = key.split("/")
    if prefix and len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]
    if key.startswith("/") or "\\" in key or any(ord(char) < 32 for char in key) \
            or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a file store key: {key!r}")


# --- backends ------------------------------------------------------------------------------------------------------

class FolderStore:
    """Files under a folder (FILES_DIR): `<root>/<key>`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.description = f"FILES_DIR {self.root}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def write(self, key: str, raw: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")  # one per writer
        try:
            with open(partial, "xb") as stream:
                stream.write(raw)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._path(folder) if folder else self.root
        found = []
        for where, _dirs, names in os.walk(start):
            for name in names:
                path = Path(where) / name
                if name.endswith(PARTIAL_SUFFIX) or not path.is_file():
                    continue
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        return sorted(found)


class S3Store:
    """Objects `<prefix><key>` in one bucket of an S3-compatible service."""

    def __init__(self, client, bucket: str, prefix: str, endpoint: str | None):
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.pid = os.getpid()
        where = ", ".join(part for part in (f"prefix {prefix}" if prefix else "",
                                            f"at {endpoint}" if endpoint else "") if part)
        self.description = f"S3 bucket {bucket}" + (f" ({where})" if where else "")

    def _call(self, operation, **arguments):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **arguments)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound") and "Key" in arguments:
                raise FileNotFoundError(f"no stored file {arguments['Key']!r} in {self.description}") from None
            raise StorageError(f"{self.description}: {operation} failed ({code or 'error'})") from error
        except BotoCoreError as error:
            raise StorageError(f"{self.description}: {operation} failed ({type(error).__name__})") from error

    def read(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError

        response = self._call("get_object", Key=self.prefix + key)
        try:
            return response["Body"].read()  # botocore checks the length it was announced
        except (BotoCoreError, OSError) as error:
            raise StorageError(f"{self.description}: get_object failed ({type(error).__name__})") from error

    def write(self, key: str, raw: bytes) -> None:
        self._call("put_object", Key=self.prefix + key, Body=raw, ContentType="application/octet-stream")

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=self.prefix + key)
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self.prefix + key)  # S3 answers 204 for a missing key too

    def keys(self, prefix: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                         Prefix=self.prefix + prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix):]
                    if key and not key.endswith(PARTIAL_SUFFIX) and not key.endswith("/"):
                        found.append(key)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            raise StorageError(f"{self.description}: list_objects_v2 failed ({code or 'error'})") from error
        except BotoCoreError as error:
            raise StorageError(f"{self.description}: list_objects_v2 failed ({type(error).__name__})") from error
        return sorted(found)


_s3_lock = threading.Lock()


def _store():
    config = current_app.config
    problem = settings_problem(config)
    if problem:
        raise ConfigError(problem)
    if (config.get("FILE_STORAGE") or "folder") == "folder":
        return FolderStore(Path(config["FILES_DIR"]))  # read each time: cheap, and follows the setting
    return _s3_store(current_app._get_current_object())


def _s3_settings(config) -> tuple:
    prefix = (config.get("S3_PREFIX") or "").strip("/")
    return (config["S3_BUCKET"], f"{prefix}/" if prefix else "", config.get("S3_ENDPOINT_URL") or None,
            config.get("S3_REGION") or None, config.get("S3_ACCESS_KEY_ID") or None,
            config.get("S3_SECRET_ACCESS_KEY") or None, config.get("S3_ADDRESSING_STYLE") or None)


def _s3_store(app) -> S3Store:
    """The app's S3 store, its client made on first use (once per app and process: a client is never shared
    across a fork) and again only if the settings change."""
    settings = _s3_settings(app.config)
    cached = app.extensions.get("filestore_s3")
    if cached is not None and cached[0] == settings and cached[1].pid == os.getpid():
        return cached[1]
    with _s3_lock:
        cached = app.extensions.get("filestore_s3")
        if cached is None or cached[0] != settings or cached[1].pid != os.getpid():
            bucket, prefix, endpoint = settings[:3]
            cached = (settings, S3Store(_s3_client(*settings[2:]), bucket, prefix, endpoint))
            app.extensions["filestore_s3"] = cached
    return cached[1]


def _s3_client(endpoint, region, access_key, secret_key, style):
    import boto3
    from botocore.config import Config

    # Path-style addressing (https://host/bucket/key) by default on a custom endpoint: MinIO and Ceph need it, the
    # others accept it; on Amazon S3 boto3 chooses.
    style = style or ("path" if endpoint else "auto")
    options = {"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 3, "mode": "standard"},
               "s3": {"addressing_style": style}}
    if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
        # botocore ≥ 1.36 adds CRC checksums to every PUT, which several S3-compatible services refuse: only
        # where the API requires one (the Fernet token carries its own MAC).
        options.update(request_checksum_calculation="when_required", response_checksum_validation="when_required")
    credentials = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key} if access_key else {}
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, config=Config(**options),
                                          **credentials)
