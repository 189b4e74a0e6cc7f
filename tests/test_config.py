import pytest

from webapp.config import ConfigError, load_settings

BASE = {"PAYWATCH_ENV": "test", "SECRET_KEY": "s" * 32}


@pytest.mark.parametrize(
    "name, value",
    [
        ("PAYWATCH_VERIFICATION_MODE", "sometimes"),
        ("PAYWATCH_PENDING_ALERT_SECONDS", "two minutes"),
        ("PAYWATCH_PENDING_ALERT_SECONDS", "0"),
        ("PAYWATCH_REQUEST_TTL_MINUTES", "-5"),
        ("PAYWATCH_TIMEZONE", "Mars/Olympus"),
        ("PAYWATCH_PHONE_REGION", "XX"),
        ("PAYWATCH_CURRENCY", "shillings"),
        ("DATABASE_URL", "mysql://root@localhost/pw"),
        ("REDIS_URL", "localhost:6379"),
        ("PORT", "80000"),
        ("WPPCONNECT_URL", "localhost:21465"),
        ("WPPCONNECT_SESSION", "a/b"),
        ("WPPCONNECT_TIMEOUT", "0"),
        ("WPPCONNECT_TIMEOUT", "20s"),
        ("WPPCONNECT_TIMEOUT", "61"),
        ("PAYWATCH_ENV", "staging"),
        ("PAYWATCH_SECURE_COOKIES", "maybe"),
        ("PAYWATCH_ADMIN_EMAIL", "not-an-email"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, name: value})
    assert info.value.name == name
    assert str(info.value).startswith(f"{name}:")


def test_defaults_follow_the_design():
    settings = load_settings(BASE)
    assert settings.verification_mode == "hybrid"
    assert settings.pending_alert_seconds == 120
    assert settings.request_ttl_minutes == 15
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("instance/paywatch.db")
    assert settings.port == 8000
    assert settings.wppconnect_timeout == 20


def test_values_are_parsed():
    settings = load_settings(
        {**BASE, "PAYWATCH_PHONE_REGION": "pk", "PAYWATCH_CURRENCY": "pkr", "PAYWATCH_PENDING_ALERT_SECONDS": "5"}
    )
    assert (settings.phone_region, settings.currency, settings.pending_alert_seconds) == ("PK", "PKR", 5)


def test_production_requires_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"PAYWATCH_ENV": "production", "PAYWATCH_INSTANCE_PATH": str(tmp_path)})


def test_development_generates_a_secret_key_once_into_the_instance_folder(tmp_path):
    env = {"PAYWATCH_ENV": "development", "PAYWATCH_INSTANCE_PATH": str(tmp_path)}
    first = load_settings(env).secret_key
    assert len(first) >= 32
    assert (tmp_path / "secret_key").read_text().strip() == first
    assert load_settings(env).secret_key == first


def test_a_secret_can_come_from_a_file(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("k" * 40 + "\n")
    assert load_settings({"PAYWATCH_ENV": "test", "SECRET_KEY_FILE": str(secret)}).secret_key == "k" * 40


def test_secrets_are_not_in_the_settings_repr():
    settings = load_settings({**BASE, "PAYWATCH_ADMIN_PASSWORD": "hunter2hunter2", "WPPCONNECT_SECRET_KEY": "wpp-secret"})
    text = repr(settings)
    assert "hunter2hunter2" not in text and "wpp-secret" not in text and "s" * 32 not in text
