"""Settings from the environment: the only module that reads os.environ.

Every variable is parsed strictly at start-up; a bad value raises ConfigError
naming the variable. In development a `.env` file in the project root is read
beneath the real environment, and SECRET_KEY is generated into instance/.
Secrets may also come from `NAME_FILE` (a path whose content is the value).
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

ENVIRONMENTS = ("development", "production", "test")
MODES = ("automated", "manual", "hybrid")
# argon2-cffi's parameter profiles (argon2.profiles) a password hash may use; the first is the default.
# CHEAPEST is for test suites (a hash in microseconds instead of ~0.3 s) and is refused in production.
ARGON2_PROFILES = ("RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY", "CHEAPEST")


class ConfigError(ValueError):
    """A configuration variable is missing or has a bad value; names the variable."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = f"sqlite:///{INSTANCE / 'paywatch.db'}"
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: str = field(default="", repr=False)
    admin_email: str | None = None
    admin_password: str | None = field(default=None, repr=False)
    timezone: str = "UTC"
    phone_region: str | None = None
    currency: str = "USD"
    verification_mode: str = "hybrid"
    pending_alert_seconds: int = 120
    request_ttl_minutes: int = 15
    wppconnect_url: str | None = None
    wppconnect_session: str = "paywatch"
    wppconnect_secret_key: str | None = field(default=None, repr=False)
    wppconnect_token: str | None = field(default=None, repr=False)
    wppconnect_timeout: int = 20
    port: int = 8000
    secure_cookies: bool = True
    public_url: str | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    smtp_url: str | None = field(default=None, repr=False)  # smtp://user:pass@host:port, smtps://… for TLS
    mail_from: str | None = None
    alert_emails: tuple[str, ...] = ()
    login_rate_limit: str = "10 per minute"
    metrics_token: str | None = field(default=None, repr=False)
    pay_page_rate_limit: str = "120 per minute"
    claim_rate_limit: str = "5 per 10 minutes"
    webhooks_allow_private: bool = False  # PAYWATCH_WEBHOOKS_ALLOW_PRIVATE: webhook URLs on loopback/private addresses
    demo: bool = False  # PAYWATCH_DEMO (set by `make demo`): pages link to the sandbox's logs
    api_rate_limit: str = "600 per minute"  # each API key's, unless the key has its own
    argon2_profile: str = ARGON2_PROFILES[0]  # PAYWATCH_ARGON2_PROFILE: the cost of new password hashes
    # PAYWATCH_PG_PREPARE: PostgreSQL runs the ledger's statements prepared once per connection;
    # off behind a pooler that hands one client several server connections (PgBouncer's
    # transaction or statement pooling), where a statement prepared on one is unknown on another.
    pg_prepare: bool = True
    instance_path: Path = INSTANCE

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_overrides(self, **changes) -> "Settings":
        """A copy with some fields replaced (tests and one-off tools)."""
        return replace(self, **changes)


def _read(env: Mapping[str, str], name: str) -> str | None:
    """The value of `name`, or of the file named by `name_FILE`; None when unset or empty."""
    value = env.get(name)
    if value is None and env.get(f"{name}_FILE"):
        path = Path(env[f"{name}_FILE"])
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE", f"cannot read {path}: {exc.strerror}") from None
    if value is None:
        return None
    value = value.strip()
    return value or None


def _int(env, name, default, *, minimum=0, maximum=None) -> int:
    raw = _read(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(name, f"must be {bound}, got {value}")
    return value


def _bool(env, name, default) -> bool:
    raw = _read(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def rate_limit_problem(text: str) -> str | None:
    """Why `text` is not a rate limit like "600 per minute" (or "10/second; 600/minute"), else None."""
    from limits import parse_many

    try:
        items = parse_many(text) if len(text) <= 100 else []
    except ValueError:
        items = []
    if not items:
        return f"expected a rate limit like '600 per minute' or '10/second; 600/minute', got {text[:100]!r}"
    if any(item.amount < 1 for item in items):
        return "a rate limit must allow at least one request"
    return None


def _rate_limit(env, name, default) -> str:
    raw = _read(env, name)
    if raw is None:
        return default
    problem = rate_limit_problem(raw)
    if problem:
        raise ConfigError(name, problem)
    return raw


def _choice(env, name, default, choices) -> str:
    raw = _read(env, name)
    if raw is None:
        return default
    if raw not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _check(name: str, raw: str | None, test: Callable[[str], bool], problem: str) -> None:
    if raw is not None and not test(raw):
        raise ConfigError(name, f"{problem}, got {raw!r}")


def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _region_ok(region: str) -> bool:
    import phonenumbers

    return region in phonenumbers.SUPPORTED_REGIONS


def _database_ok(url: str) -> bool:
    return url.startswith(("sqlite:///", "postgresql://", "postgres://"))


def _redis_ok(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


def _smtp_ok(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in ("smtp", "smtps") and bool(parts.hostname)


def _emails(env, name) -> tuple[str, ...]:
    raw = _read(env, name)
    if raw is None:
        return ()
    emails = tuple(e.strip() for e in raw.split(",") if e.strip())
    for email in emails:
        _check(name, email, lambda e: "@" in e and " " not in e, "expected comma-separated e-mail addresses")
    return emails


def _secret_key(env: Mapping[str, str], name: str, instance: Path) -> str:
    """SECRET_KEY from the environment; in development, generated once into instance/."""
    value = _read(env, "SECRET_KEY")
    if value is not None:
        if len(value) < 16:
            raise ConfigError("SECRET_KEY", "must be at least 16 characters")
        if name == "production" and value.startswith("change-me"):
            raise ConfigError("SECRET_KEY", "is still the placeholder of .env.example; set a random one")
        return value
    if name == "production":
        raise ConfigError("SECRET_KEY", "is required when PAYWATCH_ENV=production")
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _metrics_token(env: Mapping[str, str]) -> str | None:
    """PAYWATCH_METRICS_TOKEN: the bearer token /metrics accepts (besides an admin's session)."""
    token = _read(env, "PAYWATCH_METRICS_TOKEN")
    if token is not None and len(token) < 16:
        raise ConfigError("PAYWATCH_METRICS_TOKEN", "must be at least 16 characters")
    return token


def _environment(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    if environ is not None:
        return environ
    merged: dict[str, str] = {}
    if os.environ.get("PAYWATCH_ENV", "development") == "development":
        from dotenv import dotenv_values

        merged.update({k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None})
    merged.update(os.environ)
    return merged


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse Settings from `environ` (default: os.environ over .env in development).

    Raises ConfigError naming the first bad variable.
    """
    env = _environment(environ)
    name = _choice(env, "PAYWATCH_ENV", "development", ENVIRONMENTS)
    instance = Path(_read(env, "PAYWATCH_INSTANCE_PATH") or INSTANCE)
    database_url = _read(env, "DATABASE_URL") or f"sqlite:///{instance / 'paywatch.db'}"
    _check("DATABASE_URL", database_url, _database_ok, "expected sqlite:///PATH or postgresql://…")
    redis_url = _read(env, "REDIS_URL") or Settings.redis_url
    if not _redis_ok(redis_url):  # the value may hold a password: never echo it
        raise ConfigError("REDIS_URL", "expected redis://HOST:PORT/DB, rediss://… (TLS) or unix://PATH")
    timezone = _read(env, "PAYWATCH_TIMEZONE") or "UTC"
    _check("PAYWATCH_TIMEZONE", timezone, _zone_ok, "expected an IANA zone like Africa/Kampala")
    region = _read(env, "PAYWATCH_PHONE_REGION")
    region = region.upper() if region else None
    _check("PAYWATCH_PHONE_REGION", region, _region_ok, "expected a two-letter region like PK")
    currency = (_read(env, "PAYWATCH_CURRENCY") or "USD").upper()
    _check("PAYWATCH_CURRENCY", currency, lambda c: len(c) == 3 and c.isascii() and c.isalpha(),
           "expected an ISO 4217 code")
    admin_email = _read(env, "PAYWATCH_ADMIN_EMAIL")
    _check("PAYWATCH_ADMIN_EMAIL", admin_email, lambda e: "@" in e, "expected an email address")
    wpp_url = _read(env, "WPPCONNECT_URL")
    _check("WPPCONNECT_URL", wpp_url, lambda u: u.startswith(("http://", "https://")), "expected http(s)://HOST:PORT")
    public_url = _read(env, "PAYWATCH_PUBLIC_URL")
    _check("PAYWATCH_PUBLIC_URL", public_url, lambda u: u.startswith(("http://", "https://")), "expected http(s)://…")
    session = _read(env, "WPPCONNECT_SESSION") or "paywatch"
    _check("WPPCONNECT_SESSION", session, lambda s: ":" not in s and "/" not in s, "must not contain ':' or '/'")
    log_level = (_read(env, "LOG_LEVEL") or "INFO").upper()
    _check("LOG_LEVEL", log_level, lambda lv: lv in ("DEBUG", "INFO", "WARNING", "ERROR"), "expected DEBUG/INFO/WARNING/ERROR")
    smtp_url = _read(env, "PAYWATCH_SMTP_URL")
    if smtp_url is not None and not _smtp_ok(smtp_url):  # the value may hold a password: never echo it
        raise ConfigError("PAYWATCH_SMTP_URL", "expected smtp://USER:PASS@HOST:PORT or smtps://…")
    mail_from = _read(env, "PAYWATCH_MAIL_FROM")
    _check("PAYWATCH_MAIL_FROM", mail_from, lambda e: "@" in e, "expected an e-mail address")
    return Settings(
        env=name,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=_secret_key(env, name, instance),
        admin_email=admin_email,
        admin_password=_read(env, "PAYWATCH_ADMIN_PASSWORD"),
        timezone=timezone,
        phone_region=region,
        currency=currency,
        verification_mode=_choice(env, "PAYWATCH_VERIFICATION_MODE", "hybrid", MODES),
        pending_alert_seconds=_int(env, "PAYWATCH_PENDING_ALERT_SECONDS", 120, minimum=1),
        request_ttl_minutes=_int(env, "PAYWATCH_REQUEST_TTL_MINUTES", 15, minimum=1),
        wppconnect_url=wpp_url,
        wppconnect_session=session,
        wppconnect_secret_key=_read(env, "WPPCONNECT_SECRET_KEY"),
        wppconnect_token=_read(env, "WPPCONNECT_TOKEN"),
        wppconnect_timeout=_int(env, "WPPCONNECT_TIMEOUT", 20, minimum=1, maximum=60),
        port=_int(env, "PORT", 8000, minimum=1, maximum=65535),
        secure_cookies=_bool(env, "PAYWATCH_SECURE_COOKIES", name == "production"),
        public_url=public_url,
        log_level=log_level,
        log_format=_choice(env, "LOG_FORMAT", "text", ("text", "json")),
        smtp_url=smtp_url,
        mail_from=mail_from,
        alert_emails=_emails(env, "PAYWATCH_ALERT_EMAILS"),
        login_rate_limit=_read(env, "PAYWATCH_LOGIN_RATE_LIMIT") or "10 per minute",
        metrics_token=_metrics_token(env),
        pay_page_rate_limit=_rate_limit(env, "PAYWATCH_PAY_PAGE_RATE_LIMIT", "120 per minute"),
        claim_rate_limit=_rate_limit(env, "PAYWATCH_CLAIM_RATE_LIMIT", "5 per 10 minutes"),
        webhooks_allow_private=_bool(env, "PAYWATCH_WEBHOOKS_ALLOW_PRIVATE", False),
        demo=_bool(env, "PAYWATCH_DEMO", False),
        api_rate_limit=_rate_limit(env, "PAYWATCH_API_RATE_LIMIT", "600 per minute"),
        argon2_profile=_argon2_profile(env, name),
        pg_prepare=_bool(env, "PAYWATCH_PG_PREPARE", True),
        instance_path=instance,
    )


def _argon2_profile(env: Mapping[str, str], name: str) -> str:
    profile = _choice(env, "PAYWATCH_ARGON2_PROFILE", ARGON2_PROFILES[0], ARGON2_PROFILES)
    if profile == "CHEAPEST" and name == "production":
        raise ConfigError("PAYWATCH_ARGON2_PROFILE", "CHEAPEST makes passwords easy to guess from a stolen "
                                                     "database; it is for test suites, never production")
    return profile


def secret(name: str) -> str:
    """The value of environment variable `name` (or of the file `name_FILE`), for a source's
    credentials; ConfigError naming the variable when it is unset."""
    value = _read(os.environ, name)
    if value is None:
        raise ConfigError(name, "is not set (a source's config names it for a secret)")
    return value


def child_environment(**overrides: str) -> dict[str, str]:
    """The current process environment plus `overrides`, for processes we start."""
    env = dict(os.environ)
    env.update(overrides)
    return env



def settings() -> Settings:
    """The current application's Settings (inside an app context: web requests and jobs)."""
    from flask import current_app

    return current_app.config["PAYWATCH"]
