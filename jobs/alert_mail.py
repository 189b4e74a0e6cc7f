"""Operators' e-mail over SMTP (PAYWATCH_SMTP_URL): the send_alert_mail job and its SMTP adapter.

`smtp://user:pass@host:port` speaks plain SMTP and upgrades with STARTTLS when the server
offers it; `smtps://…` is TLS from the first byte (port 465 by default). Python's own
smtplib and email packages do the protocol. A 4xx answer or a network error is transient
(RQ retries; the alerts sweep sends again later), a 5xx or refused login is permanent
(the row is marked failed with the server's words).
"""
from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from jobs import job
from webapp.config import settings
from webapp.storage.models import AlertMail, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
TIMEOUT_S = 20


class MailError(Exception):
    def __init__(self, message: str, *, permanent: bool):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool  # smtps: TLS from the start
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> "SmtpTarget":
        parts = urlsplit(url)
        tls = parts.scheme == "smtps"
        return cls(parts.hostname or "localhost", parts.port or (465 if tls else 25), tls,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


def send(target: SmtpTarget, sender: str, to: list[str], subject: str, body: str) -> str:
    """Send one plain-text mail; returns its Message-ID. Raises MailError."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, ", ".join(to), subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    try:
        if target.tls:
            client = smtplib.SMTP_SSL(target.host, target.port, timeout=TIMEOUT_S, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=TIMEOUT_S)
        with client:
            client.ehlo()
            if not target.tls and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if target.username:
                client.login(target.username, target.password or "")
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"the SMTP server refused the login ({exc.smtp_code})", permanent=True) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise MailError(f"SMTP {exc.smtp_code}: {text[:300]}", permanent=exc.smtp_code >= 500) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"every recipient was refused: {', '.join(exc.recipients)}", permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}"[:300], permanent=False) from None
    if refused:
        log.warning("alert mail: some recipients were refused: %s", ", ".join(refused))
    return message["Message-ID"]


@job
def send_alert_mail(mail_id: int) -> str:
    """Send AlertMail `mail_id` unless it went already; safe to run twice (a claim by attempts)."""
    row = AlertMail.get_or_none(AlertMail.id == mail_id)
    if row is None or row.status != "pending":
        return "nothing to do"
    s = settings()
    if not s.smtp_url:
        AlertMail.update(status="failed", last_error="PAYWATCH_SMTP_URL is not set").where(AlertMail.id == mail_id).execute()
        return "failed: no SMTP server configured"
    claimed = (AlertMail.update(attempts=AlertMail.attempts + 1)
               .where(AlertMail.id == mail_id, AlertMail.status == "pending", AlertMail.attempts == row.attempts)
               .execute())
    if not claimed:
        return "another run has it"
    sender = s.mail_from or f"paywatch@{SmtpTarget.from_url(s.smtp_url).host}"
    try:
        message_id = send(SmtpTarget.from_url(s.smtp_url), sender, row.to.split(","), row.subject, row.body)
    except MailError as exc:
        final = exc.permanent or row.attempts + 1 >= MAX_ATTEMPTS
        AlertMail.update(status="failed" if final else "pending", last_error=str(exc)).where(
            AlertMail.id == mail_id).execute()
        log.warning("alert mail %s: %s%s", mail_id, exc, "" if final else " (will retry)")
        if final:
            return f"failed: {exc}"
        raise  # transient: RQ retries (the alerts sweep too, if Redis lost the retry)
    AlertMail.update(status="sent", sent_at=utcnow(), last_error=None).where(AlertMail.id == mail_id).execute()
    log.info("alert mail %s sent (%s)", mail_id, message_id)
    return "sent"
