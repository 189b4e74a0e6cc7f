"""MIME shapes for sandbox provider mail (see sandbox/mail.py for the content).

Each builder returns the raw bytes of one message in a shape seen in real
provider mail (shared/providers.md §1.2–1.3): multipart/alternative with an
HTML part and a degenerate plain part, HTML-only, plain quoted-printable or
base64, a Gmail inline forward, and an SMS carried by a forwarder app.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from html import escape

FORWARDER = "owner@shop.example"         # a person forwarding provider mail
SMS_FORWARDER = "sms-relay@shop.example"  # an SMS-to-email forwarder app
_BASE_TIME = datetime(2026, 6, 14, 9, 30, tzinfo=timezone.utc)


def moment(rng: random.Random) -> datetime:
    """A deterministic aware UTC time within a month of the sandbox epoch."""
    return _BASE_TIME + timedelta(minutes=rng.randrange(0, 30 * 24 * 60))


def message_id(rng: random.Random, domain: str) -> str:
    return f"<{rng.getrandbits(64):016x}.{rng.randrange(10**6)}@{domain}>"


def _envelope(from_: str, subject: str, sent: datetime, msg_id: str | None,
              to: str = "shop@shop.example") -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["MIME-Version"] = "1.0"
    msg["From"] = from_
    msg["To"] = to
    msg["Subject"] = subject  # the policy writes RFC 2047 words for emoji and accents
    msg["Date"] = format_datetime(sent)
    if msg_id:
        msg["Message-ID"] = msg_id
    return msg


def _stable(msg: EmailMessage) -> bytes:
    """Serialise with boundaries derived from the Message-ID, not from random()."""
    seed = str(msg.get("Message-ID") or msg.get("Subject") or "")
    for index, part in enumerate(msg.walk()):
        if part.is_multipart():
            digest = hashlib.sha256(f"{seed}/{index}".encode()).hexdigest()[:24]
            part.set_boundary(f"=_pw_{digest}")
    return msg.as_bytes()


def html_page(blocks: list[str]) -> str:
    """A mail-client-like HTML page: a <style> block first, one <div> per block."""
    body = "".join(f"<div class=\"row\">{b}</div>\n" for b in blocks)
    return ("<html><head><style>.row{font:14px Arial} td{padding:4px}"
            " .amount{font-weight:bold}</style></head><body><table><tr><td>\n"
            f"{body}</td></tr></table></body></html>")


def esc(text: str) -> str:
    return escape(text, quote=False)


def alternative(from_: str, subject: str, sent: datetime, msg_id: str | None,
                html: str, plain: str = " ", *, nested: bool = False) -> bytes:
    """multipart/alternative (plain + HTML, both quoted-printable).

    `nested=True` wraps it as NayaPay does: mixed → related → alternative.
    """
    msg = _envelope(from_, subject, sent, msg_id)
    body = msg if not nested else EmailMessage(policy=SMTP)
    body.set_content(plain, cte="quoted-printable")
    body.add_alternative(html, subtype="html", cte="quoted-printable")
    if nested:
        related = EmailMessage(policy=SMTP)
        related.make_related()
        related.attach(body)
        msg.make_mixed()
        msg.attach(related)
    return _stable(msg)


def html_only(from_: str, subject: str, sent: datetime, msg_id: str | None, html: str,
              cte: str = "quoted-printable") -> bytes:
    """A text/html message with no plain part (HDFC InstaAlerts style)."""
    msg = _envelope(from_, subject, sent, msg_id)
    msg.set_content(html, subtype="html", cte=cte)
    return _stable(msg)


def plain(from_: str, subject: str, sent: datetime, msg_id: str | None, text: str,
          cte: str = "quoted-printable") -> bytes:
    """A text/plain message; `cte` is "quoted-printable", "base64" or "8bit"."""
    msg = _envelope(from_, subject, sent, msg_id)
    msg.set_content(text, cte=cte)
    return _stable(msg)


def gmail_forward(inner_from: str, inner_subject: str, inner_sent: datetime,
                  inner_text: str, forwarded_at: datetime, msg_id: str | None,
                  note: str = "FYI, payment below") -> bytes:
    """A Gmail inline forward by FORWARDER, in Gmail's plain-text rendering."""
    when = inner_sent.strftime("%a, %b %d, %Y at %I:%M %p").replace(" 0", " ")
    text = (f"{note}\n\n---------- Forwarded message ---------\n"
            f"From: {inner_from}\nDate: {when}\nSubject: {inner_subject}\n"
            f"To: <shop@shop.example>\n\n\n{inner_text}\n")
    return plain(FORWARDER, f"Fwd: {inner_subject}", forwarded_at, msg_id, text)


def sms_forward(sender_id: str, sms_text: str, forwarded_at: datetime,
                msg_id: str | None, style: str) -> bytes:
    """An SMS delivered by SMS_FORWARDER: style "line", "json" or "subject"."""
    if style == "json":
        body = "Forwarded by SMS Relay\n" + json.dumps(
            {"sender": sender_id, "message": sms_text, "secret": "sandbox",
             "sent_timestamp": int(forwarded_at.timestamp())})
        return plain(SMS_FORWARDER, "SMS forward", forwarded_at, msg_id, body)
    if style == "subject":
        return plain(SMS_FORWARDER, f"SMS from {sender_id}", forwarded_at, msg_id, sms_text)
    body = (f"From: {sender_id}\nReceived: {forwarded_at:%Y-%m-%d %H:%M:%S}\n"
            f"SIM: 1\n\n{sms_text}\n")
    return plain(SMS_FORWARDER, "New SMS", forwarded_at, msg_id, body)


# --- invented people, ids and amounts ---------------------------------------------

FIRST = ["Amina", "Bilal", "Chidi", "Dina", "Esther", "Farhan", "Grace", "Hamza", "Irene",
          "Juma", "Kavya", "Lerato", "Moses", "Nadia", "Omar", "Priya", "Rashid", "Sana"]
LAST = ["Achieng", "Baig", "Chaudhry", "Delgado", "Ekwueme", "Fofana", "Githinji",
         "Hussain", "Iyer", "Kato", "Lubega", "Mensah", "Nair", "Otieno", "Qureshi"]


@dataclass
class Sample:
    """One rendered mail and the extraction a correct parser must produce."""

    name: str
    raw: bytes
    expected: dict
    forwarder: str | None = None
    extra: dict = field(default_factory=dict)


def person(rng: random.Random, upper: bool = False) -> str:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return name.upper() if upper else name


def code(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
DIGITS = "0123456789"


def grouped(minor: int, decimals: int = 2, *, lakh: bool = False, sep: str = ",",
             point: str = ".", keep_zero_cents: bool = True) -> str:
    """1234500 → "12,345.00" (or lakh "12,345.00" → "1,23,450.00" style)."""
    whole, cents = divmod(minor, 10 ** decimals) if decimals else (minor, 0)
    digits = str(whole)
    if lakh and len(digits) > 3:
        head, tail = digits[:-3], digits[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        text = sep.join([head, *groups, tail]) if head else sep.join([*groups, tail])
    else:
        text = f"{whole:,}".replace(",", sep)
    if decimals and (keep_zero_cents or cents):
        text += f"{point}{cents:0{decimals}d}"
    return text


def expect(kind: str, **fields) -> dict:
    return {"kind": kind, **fields}


def money(rng: random.Random, low: int, high: int, decimals: int = 2,
           whole: bool = False) -> int:
    """Minor units between low and high major units; `whole` drops the cents."""
    major = rng.randrange(low, high)
    cents = 0 if whole or not decimals else rng.choice([0, 0, 50, rng.randrange(100)])
    return major * 10 ** decimals + cents
