"""A mailbox source's account: its config (secrets from the environment), the providers it
reads, and a logged-in IMAP connection. Used by the fetch pass (jobs/mailbox.py), the IDLE
watcher (jobs/mailbox_watch.py) and SMS sources (jobs/sms.py)."""
from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from jobs.email_providers import Provider, ProviderError, installed_providers
from webapp import config as app_config


class MailboxError(Exception):
    """A mailbox that cannot be read. `permanent`: retrying will not help (config, login)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class MailboxConfig:
    host: str
    port: int
    ssl: bool
    username: str
    password: str
    folder: str = "INBOX"
    processed_folder: str | None = None
    idle: bool = True
    providers: tuple[str, ...] | None = None
    trusted_senders: tuple[str, ...] = ()
    providers_dir: str | None = None
    batch_size: int = 100
    timeout_s: float = 30.0


def mailbox_config(config: dict[str, Any], *, with_secrets: bool = True) -> MailboxConfig:
    """A checked MailboxConfig from a source's config; MailboxError(permanent) names the bad key."""
    def text(key: str, default: str | None = None) -> str | None:
        value = config.get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise MailboxError(f"mailbox config: {key} must be a non-empty string", permanent=True)
        return value

    def names(key: str) -> tuple[str, ...] | None:
        value = config.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise MailboxError(f"mailbox config: {key} must be a list of strings", permanent=True)
        return tuple(v.strip() for v in value)

    ssl = config.get("ssl", True)
    port = config.get("port", 993 if ssl else 143)
    batch = config.get("batch_size", 100)
    for key, value in (("ssl", ssl), ("idle", config.get("idle", True))):
        if not isinstance(value, bool):
            raise MailboxError(f"mailbox config: {key} must be true or false", permanent=True)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise MailboxError(f"mailbox config: port must be a TCP port number, got {port!r}", permanent=True)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 1000:
        raise MailboxError(f"mailbox config: batch_size must be 1–1000, got {batch!r}", permanent=True)
    username = password = ""
    if with_secrets:
        try:
            username = app_config.secret(text("username_env"))
            password = app_config.secret(text("password_env"))
        except app_config.ConfigError as exc:
            raise MailboxError(f"mailbox credentials: {exc}", permanent=True) from None
    return MailboxConfig(
        host=text("host"), port=port, ssl=ssl, username=username, password=password,
        folder=text("folder", "INBOX"), processed_folder=text("processed_folder"),
        idle=config.get("idle", True), providers=names("providers"),
        trusted_senders=names("trusted_senders") or (), providers_dir=text("providers_dir"),
        batch_size=batch,
    )


def parsers_for(cfg: MailboxConfig) -> list[Provider]:
    """The providers this source reads: all loaded ones (built-in + instance folder + providers_dir)
    or those named."""
    try:
        loaded = installed_providers([cfg.providers_dir] if cfg.providers_dir else [])
    except ProviderError as exc:
        raise MailboxError(str(exc), permanent=True) from None
    if cfg.providers is None:
        return loaded
    by_name = {p.name: p for p in loaded}
    unknown = [n for n in cfg.providers if n not in by_name]
    if unknown:
        raise MailboxError(f"mailbox config: unknown provider(s) {', '.join(unknown)}; "
                           f"known: {', '.join(sorted(by_name))}", permanent=True)
    return [by_name[n] for n in cfg.providers]


def connect(cfg: MailboxConfig) -> IMAPClient:
    """A logged-in client with TCP_NODELAY (no Nagle delay on small commands).

    Raises MailboxError: permanent for a refused login, transient otherwise.
    """
    try:
        client = IMAPClient(cfg.host, port=cfg.port, ssl=cfg.ssl, timeout=cfg.timeout_s)
    except (OSError, IMAPClientError) as exc:
        raise MailboxError(f"cannot reach {cfg.host}:{cfg.port}: {exc}") from None
    client.normalise_times = False  # aware INTERNALDATEs, not local-time naive ones
    try:
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.login(cfg.username, cfg.password)
    except LoginError as exc:
        close(client)
        raise MailboxError(f"login refused for {cfg.username!r} at {cfg.host}: {exc}", permanent=True) from None
    except (OSError, IMAPClientError) as exc:
        close(client)
        raise MailboxError(f"cannot log in to {cfg.host}:{cfg.port}: {exc}") from None
    return client


def close(client: IMAPClient) -> None:
    """Log out politely, or just drop the socket when the connection is already broken."""
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:
            pass
