"""Configuration: production refuses to start on unsafe settings, naming the variable; apps are independent."""

import pytest

from app import create_app
from config import ConfigError, DEV_SECRET_KEY, TestingConfig, load_config

STRONG = "k3y-" + "x" * 60


@pytest.fixture
def production_env(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://portal@db/portal")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://locataires.example.org")
    monkeypatch.setenv("SYSTEMPAY_SITE_ID", "87654321")
    monkeypatch.setenv("SYSTEMPAY_PAYMENT_URL", "https://paiement.systempay.fr/vads-payment/")
    monkeypatch.setenv("SYSTEMPAY_CTX_MODE", "PRODUCTION")
    monkeypatch.setenv("SYSTEMPAY_KEY_PRODUCTION", "prod-key-0123456789")
    monkeypatch.setenv("DATA_ENCRYPTION_KEYS", "x2JjC4hbI_2JNtUj-6cA0yH2Hqkh3Sn1YcOikbOs2Ek=")
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
