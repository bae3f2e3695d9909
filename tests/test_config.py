"""Configuration: production refuses to start on unsafe settings, naming every one of them; apps are independent."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from config import DEV_DATA_ENCRYPTION_KEY, DEV_SECRET_KEY, ConfigError, TestingConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
STRONG = "k3y-" + "x" * 60
PUBLISHED_TEST_KEY = "1122334455667788"  # printed in the bank's documentation
# A production environment with nothing to refuse.
SAFE_PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": STRONG,
    "DATABASE_URL": "postgresql+psycopg://portal@db/portal",
    "PUBLIC_BASE_URL": "https://locataires.example.org",
    "MAIL_SERVER": "smtp.example.org",
    "RATELIMIT_STORAGE_URI": "redis://cache:6379/0",
    "SYSTEMPAY_SITE_ID": "87654321",
    "SYSTEMPAY_PAYMENT_URL": "https://paiement.systempay.fr/vads-payment/",
    "SYSTEMPAY_CTX_MODE": "PRODUCTION",
    "SYSTEMPAY_KEY_PRODUCTION": "prod-key-0123456789",
    "SEPA_CREDITOR_ID": "FR78ZZZ424242",
    "SEPA_CREDITOR_IBAN": "FR1420041010050500013M02606",
    "SEPA_CREDITOR_BIC": "PSSTFRPPPAR",
    "SEPA_CREDITOR_NAME": "Office public de l'habitat du Loiret",
    "LANDLORD_LEGAL": "Office public de l'habitat - SIRET 123 456 789 00012 - RCS Orléans",
    "DATA_ENCRYPTION_KEYS": "x2JjC4hbI_2JNtUj-6cA0yH2Hqkh3Sn1YcOikbOs2Ek=",
    "FILES_DIR": "/srv/espace-locataire/files",
    "LANDLORD_NAME": "OPH du Loiret",
    "LANDLORD_ADDRESS": "1 place du Martroi, 45000 Orléans",
    "LANDLORD_PHONE": "02 38 42 42 42",
    "LANDLORD_EMAIL": "locataires@oph-loiret.fr",
    "SEPA_CREDITOR_STREET": "1 place du Martroi",
}
LEFT_UNSET = ("SYSTEMPAY_SANDBOX", "SYSTEMPAY_KEY_TEST")


@pytest.fixture
def production_env(monkeypatch):
    for name, value in SAFE_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    for name in LEFT_UNSET:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_production_starts_with_safe_settings(production_env):
    config = load_config()
    assert config.ENV_NAME == "production"
    assert config.SESSION_COOKIE_SECURE and config.SESSION_COOKIE_NAME.startswith("__Host-")


@pytest.mark.parametrize("value, fragment", [
    (None, "SECRET_KEY is not set"),
    ("short-secret", "SECRET_KEY is too short"),
    (DEV_SECRET_KEY, "SECRET_KEY"),
])
def test_production_refuses_weak_secret(production_env, value, fragment):
    if value is None:
        production_env.delenv("SECRET_KEY")
    else:
        production_env.setenv("SECRET_KEY", value)
    with pytest.raises(ConfigError, match=fragment):
        load_config()


def test_production_refuses_development_default_secret_even_if_long(production_env):
    production_env.setenv("SECRET_KEY", DEV_SECRET_KEY)
    assert len(DEV_SECRET_KEY) >= 30
    with pytest.raises(ConfigError, match="development default"):
        load_config()


def test_production_needs_database_and_https(production_env):
    production_env.delenv("DATABASE_URL")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_config()
    production_env.setenv("DATABASE_URL", "postgresql+psycopg://portal@db/portal")
    production_env.setenv("PUBLIC_BASE_URL", "http://locataires.example.org")
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        load_config()


@pytest.mark.parametrize("variable, value, fragment", [
    ("SYSTEMPAY_SANDBOX", "1", "SYSTEMPAY_SANDBOX"),
    ("SYSTEMPAY_PAYMENT_URL", "http://sandbox.local/", "SYSTEMPAY_PAYMENT_URL"),
    ("SYSTEMPAY_KEY_PRODUCTION", "", "SYSTEMPAY_KEY_PRODUCTION"),
    ("SYSTEMPAY_CTX_MODE", "LIVE", "SYSTEMPAY_CTX_MODE"),
])
def test_production_refuses_unsafe_payment_settings(production_env, variable, value, fragment):
    production_env.setenv(variable, value)
    with pytest.raises(ConfigError, match=fragment):
        load_config()


def test_unknown_environment_is_refused(monkeypatch):
    monkeypatch.setenv("APP_ENV", "staging")
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_config()


def test_two_apps_in_one_process_both_register_the_views(tmp_path):
    """No module-level AppBuilder: a second create_app() must get its views too."""
    first = create_app(TestingConfig(), INSTANCE_DIR=tmp_path / "a")
    second = create_app(TestingConfig(), INSTANCE_DIR=tmp_path / "b")
    for application in (first, second):
        endpoints = {rule.endpoint for rule in application.url_map.iter_rules()}
        assert "StaffHouseholdView.list" in endpoints
        assert "health.health" in endpoints
    assert first.appbuilder is not second.appbuilder


# The exact line production refuses for each problem (config.production_problems).
LINES = {
    "secret unset": "SECRET_KEY is not set: production needs a random secret of at least 32 characters",
    "secret short": "SECRET_KEY is too short: at least 32 characters are needed",
    "secret weak": "SECRET_KEY is a development default: generate a random secret",
    "database unset": "DATABASE_URL is not set: production runs on PostgreSQL",
    "database sqlite": "DATABASE_URL is a SQLite database: production runs on PostgreSQL (postgresql+psycopg://...)",
    "mail": "MAIL_SERVER is not set: production sends mail through SMTP, not as .eml files in the outbox "
            "(MAIL_OUTBOX_DIR)",
    "rate limits": "RATELIMIT_STORAGE_URI keeps the rate limits in memory: each web process counts on its own and "
                   "forgets on restart; production needs a shared store such as redis://localhost:6379/0",
    "sandbox": "SYSTEMPAY_SANDBOX must not be enabled in production",
    "payment url": "SYSTEMPAY_PAYMENT_URL must be the bank's https payment page in production",
    "ctx mode": "SYSTEMPAY_CTX_MODE must be TEST or PRODUCTION",
    "production key unset": "SYSTEMPAY_KEY_PRODUCTION is not set while SYSTEMPAY_CTX_MODE is PRODUCTION",
    "published test key": "SYSTEMPAY_KEY_TEST is the bank's published test key (1122334455667788, the default): "
                          "set the shop's own test key from the bank's back office",
    "published production key": "SYSTEMPAY_KEY_PRODUCTION is the bank's published test key (1122334455667788): "
                                "set the shop's production key from the bank's back office",
    "site id": "SYSTEMPAY_SITE_ID is not set",
    "ics": "SEPA_CREDITOR_ID is the demo creditor identifier (ICS) FR72ZZZ123456: set the landlord's own ICS",
    "iban": "SEPA_CREDITOR_IBAN is the demo IBAN FR7611425004000800000000097: set the landlord's own account",
    "bic": "SEPA_CREDITOR_BIC is the demo BIC CEPAFRPPXXX: set the landlord's bank's BIC",
    "creditor name": "SEPA_CREDITOR_NAME is the demo creditor name: set the landlord's name",
    "siret": "LANDLORD_LEGAL carries the demo SIRET (000 000 000 00000): set the landlord's legal mention with its "
             "own SIRET",
    "rate limits off": "RATELIMIT_ENABLED is off: production keeps the rate limits on logins and account forms",
    "landlord name": "LANDLORD_NAME is the demo landlord's (Habitat Val de Loire Démo): set the landlord's own",
    "landlord email": "LANDLORD_EMAIL is the demo landlord's (contact@example.org): set the landlord's own",
    "creditor street": "SEPA_CREDITOR_STREET is the demo landlord's (12 rue de la République): set the landlord's own",
    "files dir": "FILES_DIR must be an absolute path in production: a volume of its own, shared by every web machine "
                 "and the scheduler, outside the code (or FILE_STORAGE=s3)",
    "s3 endpoint": "S3_ENDPOINT_URL must start with https:// in production: in clear, someone on the way could "
                   "delete or swap stored files",
    "minio keys": "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are MinIO's published defaults: create an access key "
                  "for the portal",
    "https": "PUBLIC_BASE_URL must start with https:// in production",
    "keys unset": "DATA_ENCRYPTION_KEYS is not set: production needs its own Fernet key to encrypt bank details",
    "keys invalid": "DATA_ENCRYPTION_KEYS key 1 is not a Fernet key (32 bytes in url-safe base64, as printed by "
                    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)",
    "keys development": "DATA_ENCRYPTION_KEYS holds the development key: generate a Fernet key of your own",
}

# One unsafe change to SAFE_PRODUCTION (None: the variable is unset) and the one line it must produce.
ONE_PROBLEM = [
    ("secret unset", {"SECRET_KEY": None}),
    ("secret short", {"SECRET_KEY": "short-secret"}),
    ("secret weak", {"SECRET_KEY": DEV_SECRET_KEY}),
    ("database unset", {"DATABASE_URL": None}),
    ("database sqlite", {"DATABASE_URL": "sqlite:////srv/espace/espace.db"}),
    ("mail", {"MAIL_SERVER": None}),
    ("rate limits", {"RATELIMIT_STORAGE_URI": None}),
    ("rate limits", {"RATELIMIT_STORAGE_URI": "memory://"}),
    ("rate limits off", {"RATELIMIT_ENABLED": "0"}),
    ("landlord name", {"LANDLORD_NAME": None}),
    ("landlord name", {"LANDLORD_NAME": " habitat val de loire  démo"}),
    ("landlord email", {"LANDLORD_EMAIL": None}),
    ("creditor street", {"SEPA_CREDITOR_STREET": "12 rue de la République"}),
    ("files dir", {"FILES_DIR": None}),
    ("files dir", {"FILES_DIR": "instance/files"}),
    ("s3 endpoint", {"FILE_STORAGE": "s3", "S3_BUCKET": "espace", "S3_ENDPOINT_URL": "http://minio:9000"}),
    ("minio keys", {"FILE_STORAGE": "s3", "S3_BUCKET": "espace", "S3_ENDPOINT_URL": "https://minio.internal",
                    "S3_ACCESS_KEY_ID": "minioadmin", "S3_SECRET_ACCESS_KEY": "minioadmin"}),
    ("sandbox", {"SYSTEMPAY_SANDBOX": "1"}),
    ("payment url", {"SYSTEMPAY_PAYMENT_URL": "http://paiement.systempay.fr/vads-payment/"}),
    ("ctx mode", {"SYSTEMPAY_CTX_MODE": "LIVE"}),
    ("production key unset", {"SYSTEMPAY_KEY_PRODUCTION": None}),
    ("published test key", {"SYSTEMPAY_CTX_MODE": "TEST"}),  # the key the TEST mode signs with is the default
    ("published test key", {"SYSTEMPAY_CTX_MODE": "TEST", "SYSTEMPAY_KEY_TEST": PUBLISHED_TEST_KEY}),
    ("published production key", {"SYSTEMPAY_KEY_PRODUCTION": PUBLISHED_TEST_KEY}),
    ("site id", {"SYSTEMPAY_SITE_ID": None}),
    ("ics", {"SEPA_CREDITOR_ID": None}),
    ("ics", {"SEPA_CREDITOR_ID": "fr72 zzz 123456"}),
    ("iban", {"SEPA_CREDITOR_IBAN": None}),
    ("iban", {"SEPA_CREDITOR_IBAN": "FR76 1142 5004 0008 0000 0000 097"}),
    ("bic", {"SEPA_CREDITOR_BIC": None}),
    ("bic", {"SEPA_CREDITOR_BIC": "CEPAFRPPXXX"}),
    ("creditor name", {"SEPA_CREDITOR_NAME": None}),
    ("creditor name", {"SEPA_CREDITOR_NAME": "Habitat Val de Loire Démo"}),
    ("siret", {"LANDLORD_LEGAL": None}),
    ("siret", {"LANDLORD_LEGAL": "OPH du Loiret - SIRET 000 000 000 00000"}),
    ("https", {"PUBLIC_BASE_URL": "http://locataires.example.org"}),
    ("https", {"PUBLIC_BASE_URL": None}),
    ("keys unset", {"DATA_ENCRYPTION_KEYS": None}),
    ("keys invalid", {"DATA_ENCRYPTION_KEYS": "not-a-fernet-key"}),
    ("keys development", {"DATA_ENCRYPTION_KEYS": DEV_DATA_ENCRYPTION_KEY}),
]


def _apply(monkeypatch, changes: dict) -> None:
    for name, value in changes.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize("problem, changes", ONE_PROBLEM,
                         ids=[f"{problem}-{'-'.join(f'{k}={v}' for k, v in changes.items())}"
                              for problem, changes in ONE_PROBLEM])
def test_production_names_each_problem_on_its_own_line(production_env, problem, changes):
    _apply(production_env, changes)
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert refused.value.problems == [LINES[problem]]
    assert str(refused.value) == LINES[problem]


ALL_AT_ONCE = {
    "SECRET_KEY": "short-secret", "DATABASE_URL": "sqlite:///espace.db", "MAIL_SERVER": None,
    "RATELIMIT_STORAGE_URI": "memory://", "SYSTEMPAY_SANDBOX": "on", "SYSTEMPAY_PAYMENT_URL": None,
    "SYSTEMPAY_CTX_MODE": "TEST", "SYSTEMPAY_KEY_PRODUCTION": PUBLISHED_TEST_KEY, "SYSTEMPAY_SITE_ID": None,
    "SEPA_CREDITOR_ID": None, "SEPA_CREDITOR_IBAN": None, "SEPA_CREDITOR_BIC": None, "SEPA_CREDITOR_NAME": None,
    "LANDLORD_LEGAL": None, "PUBLIC_BASE_URL": "http://127.0.0.1:8080", "DATA_ENCRYPTION_KEYS": DEV_DATA_ENCRYPTION_KEY,
}
ALL_AT_ONCE_LINES = [LINES[key] for key in (
    "secret short", "database sqlite", "mail", "rate limits", "sandbox", "payment url", "published test key",
    "published production key", "site id", "ics", "iban", "bic", "creditor name", "siret", "https",
    "keys development")]


def test_production_names_every_problem_at_once(production_env):
    _apply(production_env, ALL_AT_ONCE)
    with pytest.raises(ConfigError) as refused:
        load_config()
    assert refused.value.problems == ALL_AT_ONCE_LINES
    assert str(refused.value).splitlines() == ALL_AT_ONCE_LINES
    # the application factory refuses the same way, before building anything
    with pytest.raises(ConfigError) as refused_app:
        create_app()
    assert refused_app.value.problems == ALL_AT_ONCE_LINES


@pytest.mark.parametrize("changes", [
    {},
    # the bank's TEST mode with the shop's own test key, and the demo values spelt differently are not refused
    {"SYSTEMPAY_CTX_MODE": "TEST", "SYSTEMPAY_KEY_PRODUCTION": None, "SYSTEMPAY_KEY_TEST": "shop-own-test-key-42"},
    {"RATELIMIT_STORAGE_URI": "rediss://:password@cache.internal:6380/1", "SYSTEMPAY_SANDBOX": "0"},
    {"FILE_STORAGE": "s3", "S3_BUCKET": "espace", "S3_ENDPOINT_URL": "https://s3.gra.io.cloud.ovh.net",
     "FILES_DIR": None},
], ids=["production-mode", "bank-test-mode-own-key", "tls-redis", "object-storage"])
def test_a_fully_valid_production_environment_passes(production_env, changes):
    from config import config_problems

    _apply(production_env, changes)
    assert config_problems() == []
    config = load_config()
    assert config.ENV_NAME == "production"
    assert config.SYSTEMPAY_SANDBOX is False


def _clean_env(tmp_path, settings: dict) -> dict:
    """A child environment made of `settings` alone (nothing inherited from the test run's environment)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8",
           "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tmp_path), "INSTANCE_DIR": str(tmp_path / "instance")}
    env.update({name: value for name, value in settings.items() if value is not None})
    return env


def _flask(tmp_path, settings: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "run", *args], check=False, cwd=ROOT,
                          env=_clean_env(tmp_path, settings), capture_output=True, text=True, timeout=120)


def test_check_config_lists_every_problem_without_building_the_portal(tmp_path):
    settings = {**SAFE_PRODUCTION, **ALL_AT_ONCE}
    done = _flask(tmp_path, settings, "check-config")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == ALL_AT_ONCE_LINES
    assert f"{len(ALL_AT_ONCE_LINES)} problem(s)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "instance").exists()  # create_app never ran (it makes the instance folder first)


def test_check_config_names_a_single_problem_and_an_unknown_environment(tmp_path):
    done = _flask(tmp_path, {**SAFE_PRODUCTION, "MAIL_SERVER": None}, "check-config")
    assert (done.returncode, done.stdout.splitlines()) == (1, [LINES["mail"]])
    done = _flask(tmp_path, {**SAFE_PRODUCTION, "APP_ENV": "staging"}, "check-config")
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["APP_ENV must be one of development, testing, production, got 'staging'"]


def test_check_config_says_ok_for_a_safe_production(tmp_path):
    done = _flask(tmp_path, SAFE_PRODUCTION, "check-config")
    assert (done.returncode, done.stdout) == (0, "OK: no configuration problem for APP_ENV=production.\n"), \
        done.stderr


def test_other_commands_and_the_server_refuse_with_the_list(tmp_path):
    settings = {**SAFE_PRODUCTION, **ALL_AT_ONCE}
    done = _flask(tmp_path, settings, "init-security")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert all(line in done.stderr.splitlines() for line in (f"  - {line}" for line in ALL_AT_ONCE_LINES))
    served = subprocess.run([sys.executable, "run.py"], check=False, cwd=ROOT, env=_clean_env(tmp_path, settings),
                            capture_output=True, text=True, timeout=120)
    assert served.returncode == 1
    assert served.stderr.splitlines() == [
        "The portal refuses to start (APP_ENV=production):", *(f"  - {line}" for line in ALL_AT_ONCE_LINES),
        "`flask --app run check-config` lists the same problems."]
    assert not (tmp_path / "instance").exists()
