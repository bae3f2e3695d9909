"""Configuration classes. Every secret and deployment choice comes from an environment variable.

`APP_ENV` picks the class: `development` (default), `testing` or `production`. `load_config()` returns an
instance whose `validate()` stops a production start on a missing or weak setting, naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
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
    """A deployment setting is missing or unsafe; the message names the environment variable."""


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
    LANDLORD_NAME = env("LANDLORD_NAME", "Habitat Val de Loire Démo")
    LANDLORD_ADDRESS = env("LANDLORD_ADDRESS", "12 rue de la République, 45000 Orléans")
    LANDLORD_PHONE = env("LANDLORD_PHONE", "02 38 00 00 00")
    LANDLORD_EMAIL = env("LANDLORD_EMAIL", "contact@example.org")
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
    SEPA_CREDITOR_STREET = env("SEPA_CREDITOR_STREET", "12 rue de la République")
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

    # Rate limits (Flask-Limiter). Memory is fine for one process; use Redis when several serve.
    RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
    RATELIMIT_HEADERS_ENABLED = False

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


class ProductionConfig(BaseConfig):
    ENV_NAME = "production"
    SYSTEMPAY_SANDBOX = False
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-espace_session"
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"
    SECURITY_HSTS = True

    def validate(self) -> None:
        secret = os.environ.get("SECRET_KEY", "")
        if not secret:
            raise ConfigError("SECRET_KEY is not set: production needs a random secret of at least 32 characters")
        if len(secret) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(f"SECRET_KEY is too short: at least {MIN_SECRET_KEY_LENGTH} characters are needed")
        if secret in KNOWN_WEAK_SECRETS:
            raise ConfigError("SECRET_KEY is a development default: generate a random secret")
        if not os.environ.get("DATABASE_URL"):
            raise ConfigError("DATABASE_URL is not set: production runs on PostgreSQL")
        if not (env("PUBLIC_BASE_URL") or "").startswith("https://"):
            raise ConfigError("PUBLIC_BASE_URL must start with https:// in production")
        if env_bool("SYSTEMPAY_SANDBOX", False):
            raise ConfigError("SYSTEMPAY_SANDBOX must not be enabled in production")
        if not env("SYSTEMPAY_PAYMENT_URL", "").startswith("https://"):
            raise ConfigError("SYSTEMPAY_PAYMENT_URL must be the bank's https payment page in production")
        mode = env("SYSTEMPAY_CTX_MODE", "TEST")
        if mode not in ("TEST", "PRODUCTION"):
            raise ConfigError("SYSTEMPAY_CTX_MODE must be TEST or PRODUCTION")
        if mode == "PRODUCTION" and not env("SYSTEMPAY_KEY_PRODUCTION"):
            raise ConfigError("SYSTEMPAY_KEY_PRODUCTION is not set while SYSTEMPAY_CTX_MODE is PRODUCTION")
        if not env("SYSTEMPAY_SITE_ID"):
            raise ConfigError("SYSTEMPAY_SITE_ID is not set")
        keys = os.environ.get("DATA_ENCRYPTION_KEYS", "")
        if not keys.strip():
            raise ConfigError("DATA_ENCRYPTION_KEYS is not set: production needs its own Fernet key to encrypt bank "
                              "details")
        problem = encryption_keys_problem(keys)
        if problem:
            raise ConfigError(f"DATA_ENCRYPTION_KEYS {problem}")
        if DEV_DATA_ENCRYPTION_KEY in split_encryption_keys(keys):
            raise ConfigError("DATA_ENCRYPTION_KEYS holds the development key: generate a Fernet key of your own")


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
