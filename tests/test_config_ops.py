"""Settings for running Paywatch for real: SMTP alerts, LOG_FORMAT, managed Redis over TLS (rediss://)."""
import pytest

from webapp.config import ConfigError, load_settings

BASE = {"PAYWATCH_ENV": "test", "SECRET_KEY": "s" * 32}


@pytest.mark.parametrize("name, value", [
    ("PAYWATCH_SMTP_URL", "mail.example.com:25"),
    ("PAYWATCH_SMTP_URL", "http://user:hunter2@mail.example.com"),
    ("PAYWATCH_MAIL_FROM", "paywatch"),
    ("PAYWATCH_ALERT_EMAILS", "ops@example.com, not an address"),
    ("LOG_FORMAT", "xml"),
    ("REDIS_URL", "http://:hunter2@redis.example.com:6379"),
])
def test_a_bad_value_fails_naming_the_variable_and_never_echoing_a_password(name, value):
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, name: value})
    assert info.value.name == name and "hunter2" not in str(info.value)


def test_alert_settings_are_parsed():
    settings = load_settings({**BASE, "PAYWATCH_SMTP_URL": "smtps://ops:pw@mail.example.com:465",
                              "PAYWATCH_MAIL_FROM": "paywatch@shop.example",
                              "PAYWATCH_ALERT_EMAILS": " ops@shop.example,boss@shop.example ,", "LOG_FORMAT": "json"})
    assert settings.alert_emails == ("ops@shop.example", "boss@shop.example")
    assert (settings.mail_from, settings.log_format) == ("paywatch@shop.example", "json")
    assert "pw@" not in repr(settings)  # the SMTP URL (with its password) stays out of repr


def test_a_managed_redis_over_tls_is_accepted_and_spoken_to_with_tls():
    from redis.connection import SSLConnection

    from webapp.plumbing import jobqueue

    url = "rediss://default:secret@redis.example.com:6380/0"
    assert load_settings({**BASE, "REDIS_URL": url}).redis_url == url
    assert jobqueue.redis_connection(url).connection_pool.connection_class is SSLConnection


def test_production_refuses_the_placeholder_secret_key_of_env_example(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY: is still the placeholder"):
        load_settings({"PAYWATCH_ENV": "production", "PAYWATCH_INSTANCE_PATH": str(tmp_path),
                       "SECRET_KEY": "change-me-to-48-random-characters-eg-openssl-rand-base64-36"})


def test_production_refuses_the_cheapest_password_hashing(tmp_path):
    environ = {"PAYWATCH_INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k" * 48, "PAYWATCH_ARGON2_PROFILE": "CHEAPEST"}
    with pytest.raises(ConfigError, match="PAYWATCH_ARGON2_PROFILE: CHEAPEST .* never production"):
        load_settings({**environ, "PAYWATCH_ENV": "production"})
    assert load_settings({**environ, "PAYWATCH_ENV": "test"}).argon2_profile == "CHEAPEST"
    with pytest.raises(ConfigError, match="PAYWATCH_ARGON2_PROFILE: must be one of"):
        load_settings({**environ, "PAYWATCH_ENV": "test", "PAYWATCH_ARGON2_PROFILE": "fast"})
