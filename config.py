"""Configuration classes. Every secret and deployment choice comes from an environment variable.

`APP_ENV` picks the class: `development` (default), `testing` or `production`. `load_config()` returns an
instance whose `validate()` stops a production start on missing or weak settings, naming every one of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DEV_SECRET_KEY = "dev-only-not-a-secret-change-me-before-production"
KNOWN_WEAK_SECRETS = {DEV_SECRET_KEY, "changeme", "secret", "dev", "development"}
MIN_SECRET_KEY_LENGTH = 32
# Development and tests only: a Fernet key derived from a fixed, public value. NOT A SECRET: production refuses it.
DEV_DATA_ENCRYPTION_SEED = b"dev-only-not-a-secret: espace locataire data encryption key"
DEV_DATA_ENCRYPTION_KEY = base64.urlsafe_b64encode(hashlib.sha256(DEV_DATA_ENCRYPTION_SEED).digest()).decode()


class ConfigError(RuntimeError):
    """One or more deployment settings are missing or unsafe. `problems` lists them, one sentence each naming its
    environment variable; the message is those sentences, one per line."""

    def __init__(self, problems: str | list[str] | tuple[str, ...]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from exc


def split_encryption_keys(value: str | None) -> list[str]:
    return [key.strip() for key in (value or "").split(",") if key.strip()]


def encryption_keys_problem(value: str | None) -> str | None:
    """What is wrong with a DATA_ENCRYPTION_KEYS value (comma-separated Fernet keys), or None."""
    keys = split_encryption_keys(value)
    if not keys:
        return "is empty: it needs at least one Fernet key"
    for position, key in enumerate(keys, 1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            return (f"key {position} is not a Fernet key (32 bytes in url-safe base64, as printed by "
                    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)")
    return None


# The demo landlord's identity: what `make run` shows, and what production refuses to print on its pages and papers
# (a real landlord may well be in Orléans: the postcode and town are not checked).
DEMO_IDENTITY = {
    "LANDLORD_NAME": "Habitat Val de Loire Démo",
    "LANDLORD_ADDRESS": "12 rue de la République, 45000 Orléans",
    "LANDLORD_PHONE": "02 38 00 00 00",
    "LANDLORD_EMAIL": "contact@example.org",
    "SEPA_CREDITOR_STREET": "12 rue de la République",
}


class BaseConfig:
    ENV_NAME = "base"
    INSTANCE_DIR = Path(env("INSTANCE_DIR", str(BASE_DIR / "instance")))

    SECRET_KEY = env("SECRET_KEY", DEV_SECRET_KEY)
    # Bank details at rest: comma-separated Fernet keys; the first encrypts, all decrypt. To rotate, put a new key
    # first, run `flask --app run rotate-encryption-key`, then drop the old keys.
    DATA_ENCRYPTION_KEYS = env("DATA_ENCRYPTION_KEYS", DEV_DATA_ENCRYPTION_KEY)
    SQLALCHEMY_DATABASE_URI = env("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'espace.db'}")
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

    # Where generated documents and uploads live (outside any static folder).
    FILES_DIR = Path(env("FILES_DIR", str(INSTANCE_DIR / "files")))
    # Public address of the portal: links in emails and the bank's return URLs are built from it, never from
    # the request's Host header.
    PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "http://127.0.0.1:8080").rstrip("/")

    # Landlord identity, printed on documents and pages.
    LANDLORD_NAME = env("LANDLORD_NAME", DEMO_IDENTITY["LANDLORD_NAME"])
    LANDLORD_ADDRESS = env("LANDLORD_ADDRESS", DEMO_IDENTITY["LANDLORD_ADDRESS"])
    LANDLORD_PHONE = env("LANDLORD_PHONE", DEMO_IDENTITY["LANDLORD_PHONE"])
    LANDLORD_EMAIL = env("LANDLORD_EMAIL", DEMO_IDENTITY["LANDLORD_EMAIL"])
    LANDLORD_LEGAL = env(
        "LANDLORD_LEGAL",
        "Office public de l'habitat - SIRET 000 000 000 00000 - RCS Orléans",
    )

    # Mail: with MAIL_SERVER unset every message is written to MAIL_OUTBOX_DIR as an .eml file.
    MAIL_SERVER = env("MAIL_SERVER")
    MAIL_PORT = env_int("MAIL_PORT", 587)
    MAIL_USERNAME = env("MAIL_USERNAME")
    MAIL_PASSWORD = env("MAIL_PASSWORD")
    MAIL_USE_TLS = env_bool("MAIL_USE_TLS", True)
    MAIL_FROM = env("MAIL_FROM", "Espace locataire <no-reply@example.org>")
    MAIL_OUTBOX_DIR = Path(env("MAIL_OUTBOX_DIR", str(INSTANCE_DIR / "outbox")))
    # The scheduler sends the queued mail this often (seconds).
    MAIL_DELIVERY_INTERVAL_SECONDS = env_int("MAIL_DELIVERY_INTERVAL_SECONDS", 60)

    # Card payment through the bank's hosted page (Systempay). The sandbox plays the bank's part offline.
    SYSTEMPAY_SITE_ID = env("SYSTEMPAY_SITE_ID", "12345678")
    SYSTEMPAY_KEY_TEST = env("SYSTEMPAY_KEY_TEST", "1122334455667788")
    SYSTEMPAY_KEY_PRODUCTION = env("SYSTEMPAY_KEY_PRODUCTION")
    SYSTEMPAY_CTX_MODE = env("SYSTEMPAY_CTX_MODE", "TEST")
    SYSTEMPAY_PAYMENT_URL = env("SYSTEMPAY_PAYMENT_URL")  # unset: the sandbox's own page
    SYSTEMPAY_SANDBOX = env_bool("SYSTEMPAY_SANDBOX", True)
    PAYMENT_MIN_AMOUNT = env("PAYMENT_MIN_AMOUNT", "1.00")
    PAYMENT_MAX_AMOUNT = env("PAYMENT_MAX_AMOUNT", "3000.00")
    # SEPA direct debit: the landlord as creditor. SEPA_CREDITOR_ID is the ICS (« identifiant créancier SEPA »).
    SEPA_CREDITOR_NAME = env("SEPA_CREDITOR_NAME", "Habitat Val de Loire Demo")
    SEPA_CREDITOR_ID = env("SEPA_CREDITOR_ID", "FR72ZZZ123456")
    SEPA_CREDITOR_IBAN = env("SEPA_CREDITOR_IBAN", "FR7611425004000800000000097")
    SEPA_CREDITOR_BIC = env("SEPA_CREDITOR_BIC", "CEPAFRPPXXX")
    SEPA_CREDITOR_STREET = env("SEPA_CREDITOR_STREET", DEMO_IDENTITY["SEPA_CREDITOR_STREET"])
    SEPA_CREDITOR_POSTCODE = env("SEPA_CREDITOR_POSTCODE", "45000")
    SEPA_CREDITOR_TOWN = env("SEPA_CREDITOR_TOWN", "Orléans")
    SEPA_SCHEMA = env("SEPA_SCHEMA", "pain.008.001.08")  # or pain.008.001.02, as the bank accepts
    SEPA_LEAD_DAYS = env_int("SEPA_LEAD_DAYS", 5)  # the file is built this many days before the collection date
    # The bank must have the file this many TARGET2 business days before the collection date (SEPA Core: D-1).
    SEPA_MIN_BUSINESS_DAYS = env_int("SEPA_MIN_BUSINESS_DAYS", 1)
    # Pre-notification of each debit's date and amount: the rulebook's 14 calendar days unless the mandate states a
    # shorter agreed period (the mandate PDF prints this number).
    SEPA_PRENOTIFICATION_DAYS = env_int("SEPA_PRENOTIFICATION_DAYS", 14)

    # Monthly rent call: day of the month and hour (Europe/Paris) for the period that starts next month. The due
    # notice is the direct debit's pre-notification: the day must leave SEPA_PRENOTIFICATION_DAYS before the 2nd.
    RENT_CALL_DAY = env_int("RENT_CALL_DAY", 15)
    RENT_CALL_HOUR = env_int("RENT_CALL_HOUR", 6)

    # Scheduler: runs inside `make run`'s development server; in production, one dedicated process.
    SCHEDULER_ENABLED = env_bool("SCHEDULER_ENABLED", False)
    # A standby scheduler tries to take the lock this often; the running one checks it still holds it as often.
    SCHEDULER_LOCK_RETRY_SECONDS = float(env("SCHEDULER_LOCK_RETRY_SECONDS", "10"))

    # Rate limits (Flask-Limiter). Memory is fine for one process; use Redis when several serve.
    RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
    RATELIMIT_HEADERS_ENABLED = False
    # Behind a reverse proxy: how many proxies in front of the app set X-Forwarded-For/-Proto/-Host (0: none, the
    # client's address is the connection's). Trust exactly the proxies you run: one more lets a client choose the
    # address its rate limits count against.
    PROXY_FIX_HOPS = env_int("PROXY_FIX_HOPS", 0)

    # Flask-AppBuilder
    APP_NAME = env("APP_NAME", "Espace locataire")
    APP_THEME = ""
    APP_ICON = ""
    FAB_BASE_TEMPLATE = "base_layout.html"
    FAB_SECURITY_MANAGER_CLASS = "app.security.PortalSecurityManager"
    FAB_INDEX_VIEW = "app.home.HomeIndexView"
    # The schema belongs to the migrations; roles and permissions are written by `flask init-security`.
    FAB_CREATE_DB = False
    FAB_UPDATE_PERMS = False
    FAB_ADD_SECURITY_API = False
    FAB_API_SWAGGER_UI = False
    FAB_PASSWORD_HASH_METHOD = "scrypt"
    AUTH_TYPE = 1  # AUTH_DB
    AUTH_ROLE_ADMIN = "Admin"
    AUTH_ROLE_PUBLIC = "Public"
    AUTH_USER_REGISTRATION = False
    AUTH_RATE_LIMITED = True
    AUTH_RATE_LIMIT = env("AUTH_RATE_LIMIT", "10 per 5 minute")
    ACCOUNT_FORMS_RATE_LIMIT = env("ACCOUNT_FORMS_RATE_LIMIT", "20 per hour")

    # Languages: French first, English second.
    BABEL_DEFAULT_LOCALE = "fr"
    BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "app" / "translations")
    LANGUAGES = {
        "fr": {"flag": "fr", "name": "Français"},
        "en": {"flag": "gb", "name": "English"},
    }

    # Sessions and cookies.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    SESSION_COOKIE_NAME = "espace_session"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = timedelta(minutes=env_int("SESSION_IDLE_MINUTES", 30))
    # Absolute lifetime of a sign-in, enforced on the server (app.models.UserSession) whatever requests renew.
    SESSION_MAX_LIFETIME = timedelta(hours=env_int("SESSION_MAX_HOURS", 12))
    # Staff and administrators must turn on a second factor (TOTP) before anything else (app.staff.second_factor).
    STAFF_SECOND_FACTOR_REQUIRED = env_bool("STAFF_SECOND_FACTOR_REQUIRED", False)
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = 3600
    MAX_CONTENT_LENGTH = 12 * 1024 * 1024
    SECURITY_HSTS = False

    # --- Observability (app/observability.py, app/probes.py): logs, health checks, metrics ---------------------
    # Log lines on stderr: "json" (one JSON object a line) or "text"; unset: json in production, text elsewhere.
    LOG_FORMAT = env("LOG_FORMAT")
    LOG_LEVEL = env("LOG_LEVEL", "INFO")
    # /health/ready checks the scheduler's heartbeat (the newest finished run of the every-minute `deliver_mail`
    # job) when this is on; unset: on in production only (where exactly one scheduler process must run).
    READY_REQUIRES_SCHEDULER = (env_bool("READY_REQUIRES_SCHEDULER", False) if env("READY_REQUIRES_SCHEDULER")
                                else None)
    READY_SCHEDULER_MAX_AGE_MINUTES = env_int("READY_SCHEDULER_MAX_AGE_MINUTES", 5)
    # /health/ready fails when the oldest mail waiting to be sent is older than this (0: never fails on it).
    READY_MAIL_QUEUE_MAX_AGE_MINUTES = env_int("READY_MAIL_QUEUE_MAX_AGE_MINUTES", 30)
    # /metrics answers requests from these networks (comma-separated; "none": no network) or carrying
    # `Authorization: Bearer <METRICS_TOKEN>` (at least 16 characters); anything else is a 404.
    METRICS_ALLOWED_NETWORKS = env("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
    METRICS_TOKEN = env("METRICS_TOKEN")

    # --- File storage (app/filestore.py): uploads, generated documents, receipts, bank files -----------------------
    # Every file is a Fernet token under DATA_ENCRYPTION_KEYS whatever the backend. "folder": under FILES_DIR (one
    # volume shared by every web machine when several serve); "s3": an S3-compatible bucket (Amazon S3, MinIO, Ceph,
    # OVHcloud, Scaleway…), objects named S3_PREFIX + "documents/…", "uploads/…", "payments/…", "sepa/…".
    FILE_STORAGE = (env("FILE_STORAGE", "folder") or "folder").strip().lower()
    S3_BUCKET = env("S3_BUCKET")
    S3_PREFIX = env("S3_PREFIX", "")
    S3_ENDPOINT_URL = env("S3_ENDPOINT_URL")  # unset: Amazon S3; else the service's https:// address
    S3_REGION = env("S3_REGION")  # unset: boto3's (AWS_DEFAULT_REGION, or us-east-1)
    # Unset: boto3's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the instance role).
    S3_ACCESS_KEY_ID = env("S3_ACCESS_KEY_ID")
    S3_SECRET_ACCESS_KEY = env("S3_SECRET_ACCESS_KEY")
    # "path", "virtual" or "auto"; unset: path with S3_ENDPOINT_URL (MinIO and Ceph need it), auto on Amazon S3.
    S3_ADDRESSING_STYLE = env("S3_ADDRESSING_STYLE")

    def validate(self) -> None:
        """Refuse to start on a setting that is unsafe for this environment."""


class DevelopmentConfig(BaseConfig):
    ENV_NAME = "development"
    SCHEDULER_ENABLED = env_bool("SCHEDULER_ENABLED", True)


class TestingConfig(BaseConfig):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-that-is-long-enough-0123456789"
    SQLALCHEMY_DATABASE_URI = env("TEST_DATABASE_URL", "sqlite://")
    SCHEDULER_ENABLED = False
    AUTH_RATE_LIMITED = False
    RATELIMIT_ENABLED = False
    FAB_PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # fast hashes keep the suite quick


# The bank's signing key printed in Systempay's public documentation: anyone can sign with it.
SYSTEMPAY_PUBLISHED_TEST_KEY = "1122334455667788"
# BaseConfig's demo creditor (the defaults above): bank files and mandates must never carry them in production.
DEMO_SEPA_CREDITOR_ID = "FR72ZZZ123456"
DEMO_SEPA_CREDITOR_IBAN = "FR7611425004000800000000097"
DEMO_SEPA_CREDITOR_BIC = "CEPAFRPPXXX"
DEMO_SEPA_CREDITOR_NAMES = {"habitat val de loire demo", "habitat val de loire démo"}
# The SIRET printed in BaseConfig's demo LANDLORD_LEGAL (spaces removed).
DEMO_SIRET = "00000000000000"
# Rate-limit stores that live inside one process (Flask-Limiter's storage URI schemes).
MEMORY_RATELIMIT_SCHEMES = {"memory"}


def _compact(value: str | None) -> str:
    return "".join((value or "").split()).upper()


def _secret_key_problem() -> str | None:
    secret = os.environ.get("SECRET_KEY", "")
    if not secret:
        return "SECRET_KEY is not set: production needs a random secret of at least 32 characters"
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        return f"SECRET_KEY is too short: at least {MIN_SECRET_KEY_LENGTH} characters are needed"
    if secret in KNOWN_WEAK_SECRETS:
        return "SECRET_KEY is a development default: generate a random secret"
    return None


def _database_problem() -> str | None:
    url = (os.environ.get("DATABASE_URL") or "").strip()
    if not url:
        return "DATABASE_URL is not set: production runs on PostgreSQL"
    if url.lower().startswith("sqlite"):
        return "DATABASE_URL is a SQLite database: production runs on PostgreSQL (postgresql+psycopg://...)"
    return None


def _systempay_problems() -> list[str]:
    problems = []
    if env_bool("SYSTEMPAY_SANDBOX", False):
        problems.append("SYSTEMPAY_SANDBOX must not be enabled in production")
    if not env("SYSTEMPAY_PAYMENT_URL", "").startswith("https://"):
        problems.append("SYSTEMPAY_PAYMENT_URL must be the bank's https payment page in production")
    mode = env("SYSTEMPAY_CTX_MODE", "TEST")
    if mode not in ("TEST", "PRODUCTION"):
        problems.append("SYSTEMPAY_CTX_MODE must be TEST or PRODUCTION")
    if mode == "PRODUCTION" and not env("SYSTEMPAY_KEY_PRODUCTION"):
        problems.append("SYSTEMPAY_KEY_PRODUCTION is not set while SYSTEMPAY_CTX_MODE is PRODUCTION")
    # The TEST key signs and checks payments while the mode is TEST (app.services.payments): the published one
    # would let anybody sign a « paid » notification.
    if mode == "TEST" and env("SYSTEMPAY_KEY_TEST", SYSTEMPAY_PUBLISHED_TEST_KEY) == SYSTEMPAY_PUBLISHED_TEST_KEY:
        problems.append(f"SYSTEMPAY_KEY_TEST is the bank's published test key ({SYSTEMPAY_PUBLISHED_TEST_KEY}, the "
                        "default): set the shop's own test key from the bank's back office")
    if env("SYSTEMPAY_KEY_PRODUCTION") == SYSTEMPAY_PUBLISHED_TEST_KEY:
        problems.append(f"SYSTEMPAY_KEY_PRODUCTION is the bank's published test key ({SYSTEMPAY_PUBLISHED_TEST_KEY}): "
                        "set the shop's production key from the bank's back office")
    if not env("SYSTEMPAY_SITE_ID"):
        problems.append("SYSTEMPAY_SITE_ID is not set")
    return problems


def _left_to_demo(name: str, is_demo: Callable[[str], bool]) -> bool:
    """Whether the variable `name` is unset (BaseConfig then uses its demo default) or set to a demo value."""
    value = env(name)
    return value is None or is_demo(value)


def _demo_landlord_problems() -> list[str]:
    """BaseConfig's demo creditor and SIRET, set or left to their defaults."""
    problems = []
    if _left_to_demo("SEPA_CREDITOR_ID", lambda value: _compact(value) == DEMO_SEPA_CREDITOR_ID):
        problems.append(f"SEPA_CREDITOR_ID is the demo creditor identifier (ICS) {DEMO_SEPA_CREDITOR_ID}: set the "
                        "landlord's own ICS")
    if _left_to_demo("SEPA_CREDITOR_IBAN", lambda value: _compact(value) == DEMO_SEPA_CREDITOR_IBAN):
        problems.append(f"SEPA_CREDITOR_IBAN is the demo IBAN {DEMO_SEPA_CREDITOR_IBAN}: set the landlord's own "
                        "account")
    if _left_to_demo("SEPA_CREDITOR_BIC", lambda value: _compact(value) == DEMO_SEPA_CREDITOR_BIC):
        problems.append(f"SEPA_CREDITOR_BIC is the demo BIC {DEMO_SEPA_CREDITOR_BIC}: set the landlord's bank's BIC")
    if _left_to_demo("SEPA_CREDITOR_NAME",
                     lambda value: " ".join(value.split()).casefold() in DEMO_SEPA_CREDITOR_NAMES):
        problems.append("SEPA_CREDITOR_NAME is the demo creditor name: set the landlord's name")
    if _left_to_demo("LANDLORD_LEGAL", lambda value: DEMO_SIRET in _compact(value)):
        problems.append("LANDLORD_LEGAL carries the demo SIRET (000 000 000 00000): set the landlord's legal "
                        "mention with its own SIRET")
    for name, demo in DEMO_IDENTITY.items():  # printed on every page, mail, quittance and mandate
        if _left_to_demo(name, lambda value: " ".join(value.split()).casefold() == demo.casefold()):
            problems.append(f"{name} is the demo landlord's ({demo}): set the landlord's own")
    return problems


def _encryption_keys_problem() -> str | None:
    keys = os.environ.get("DATA_ENCRYPTION_KEYS", "")
    if not keys.strip():
        return "DATA_ENCRYPTION_KEYS is not set: production needs its own Fernet key to encrypt bank details"
    problem = encryption_keys_problem(keys)
    if problem:
        return f"DATA_ENCRYPTION_KEYS {problem}"
    if DEV_DATA_ENCRYPTION_KEY in split_encryption_keys(keys):
        return "DATA_ENCRYPTION_KEYS holds the development key: generate a Fernet key of your own"
    return None


MINIO_DEFAULT_CREDENTIALS = ("minioadmin", "minioadmin")


def _file_storage_problems() -> list[str]:
    """Where the files live, for several machines (what makes the settings unusable anywhere is
    app.filestore.settings_problem's, checked by create_app in every environment)."""
    if (env("FILE_STORAGE", "folder") or "folder").strip().lower() == "s3":
        problems = []
        endpoint = env("S3_ENDPOINT_URL")
        if endpoint and not endpoint.startswith("https://"):
            problems.append("S3_ENDPOINT_URL must start with https:// in production: in clear, someone on the way "
                            "could delete or swap stored files")
        if (env("S3_ACCESS_KEY_ID"), env("S3_SECRET_ACCESS_KEY")) == MINIO_DEFAULT_CREDENTIALS:
            problems.append("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are MinIO's published defaults: create an "
                            "access key for the portal")
        return problems
    files_dir = env("FILES_DIR")
    if not files_dir or not Path(files_dir).is_absolute():
        return ["FILES_DIR must be an absolute path in production: a volume of its own, shared by every web machine "
                "and the scheduler, outside the code (or FILE_STORAGE=s3)"]
    return []


def production_problems() -> list[str]:
    """Every setting of the environment that is missing or unsafe for production, one sentence each, naming its
    variable (in the order an operator reads the README's table)."""
    problems = [_secret_key_problem(), _database_problem()]
    if not env("MAIL_SERVER"):
        problems.append("MAIL_SERVER is not set: production sends mail through SMTP, not as .eml files in the "
                        "outbox (MAIL_OUTBOX_DIR)")
    storage = env("RATELIMIT_STORAGE_URI", "memory://")
    if storage.split(":", 1)[0].strip().lower() in MEMORY_RATELIMIT_SCHEMES:
        problems.append("RATELIMIT_STORAGE_URI keeps the rate limits in memory: each web process counts on its own "
                        "and forgets on restart; production needs a shared store such as redis://localhost:6379/0")
    if not env_bool("RATELIMIT_ENABLED", True):
        problems.append("RATELIMIT_ENABLED is off: production keeps the rate limits on logins and account forms")
    problems += _file_storage_problems()
    problems += _systempay_problems()
    problems += _demo_landlord_problems()
    if not (env("PUBLIC_BASE_URL") or "").startswith("https://"):
        problems.append("PUBLIC_BASE_URL must start with https:// in production")
    problems.append(_encryption_keys_problem())
    return [problem for problem in problems if problem]


class ProductionConfig(BaseConfig):
    ENV_NAME = "production"
    SYSTEMPAY_SANDBOX = False
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-espace_session"
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"
    SECURITY_HSTS = True

    def validate(self) -> None:
        """Refuse to start, naming every missing or unsafe setting at once (ConfigError.problems)."""
        problems = production_problems()
        if problems:
            raise ConfigError(problems)


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None) -> BaseConfig:
    name = name or env("APP_ENV", "development")
    try:
        config_class = CONFIGS[name]
    except KeyError as exc:
        raise ConfigError(f"APP_ENV must be one of {', '.join(CONFIGS)}, got {name!r}") from exc
    config = config_class()
    config.validate()
    return config


def config_problems(name: str | None = None) -> list[str]:
    """Every problem `load_config` refuses for the environment `name` (default: APP_ENV), as a list: empty when the
    settings are safe. `flask --app run check-config` prints it."""
    try:
        load_config(name)
    except ConfigError as error:
        return list(error.problems)
    return []
