"""From raw mail bytes to the plain texts that provider rules read.

`read_mail()` decodes whatever arrives (RFC 2047 subjects with emoji, quoted-
printable and base64 parts, odd or unknown charsets, HTML-only mail) and
returns a `MailText`: the envelope (From, Date, Subject, Message-ID) and the
body as candidate texts, HTML-derived first because some providers' plain part
is a label-less dump or a single space (NayaPay). `inner_forward()` and
`sms_in()` find a provider message carried inside a forwarder's mail.
Nothing here raises on bad input except through Python's own bugs; callers
still guard, because mail is hostile.
"""
from __future__ import annotations

import email
import email.parser
import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from bs4 import BeautifulSoup

from jobs.email_values import clean_spaces
from webapp.domain.input_bounds import time_problem

_BLOCK_TAGS = (
    "p", "div", "br", "tr", "td", "th", "li", "ul", "ol", "table", "tbody", "thead",
    "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer",
    "blockquote", "pre", "hr", "center", "dt", "dd",
)
_DROP_TAGS = ("style", "script", "head", "title", "noscript", "template")
# Provider notifications are a few KiB with a handful of parts. Past these bounds a mail
# is not read (headers only; the caller keeps it as unreadable evidence): a hostile one
# can nest thousands of parts, which Python's email package parses by recursion.
MAX_MAIL_BYTES = 2 * 1024 * 1024
MAX_MIME_PARTS = 100  # Content-Type headers counted in the raw bytes, before parsing
MAX_MIME_DEPTH = 8  # multipart / message/rfc822 levels walked
_MAX_PARTS = 50  # leaf parts read
_MAX_PART_TEXT = 256 * 1024  # bytes of one text part decoded
_MAX_HEADER_TEXT = 4096  # characters of one header decoded
_MAX_MESSAGE_ID = 200
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:", re.I | re.M)


@dataclass
class MailText:
    """One message as text: decoded envelope plus candidate body texts."""

    from_addresses: list[str]
    from_display: str
    subject: str
    date: datetime | None
    message_id: str | None
    bodies: list[tuple[str, str]] = field(default_factory=list)  # (label, text)
    attached: list[bytes] = field(default_factory=list)  # message/rfc822 parts
    problem: str | None = None  # why the body was not read (too big, too deep), else None

    @property
    def from_address(self) -> str:
        """The single From address, or "" when there is none or more than one."""
        return self.from_addresses[0] if len(self.from_addresses) == 1 else ""


def source_ref(raw: bytes, message_id: str | None) -> str:
    """The Message-ID, or a stable hash of the raw bytes when there is none.

    A Message-ID longer than a source_ref column holds is kept as its hash.
    """
    if message_id and len(message_id) <= _MAX_MESSAGE_ID:
        return message_id
    if message_id:
        return "sha256:" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def decode_words(value: object) -> str:
    """An RFC 2047 header value as text; undecodable words are kept as written."""
    if value is None:
        return ""
    text = str(value)[:_MAX_HEADER_TEXT]
    try:
        text = str(make_header(decode_header(text)))
    except (UnicodeError, LookupError, ValueError, TypeError, AssertionError, MessageError):
        pass  # keep the words as written: evidence, not a crash
    return clean_spaces(re.sub(r"\s*[\r\n]+\s*", " ", text)).strip()


def header_date(value: str) -> datetime | None:
    """An aware UTC datetime from a Date header; naive (-0000) read as UTC."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        parsed = parsed.astimezone(timezone.utc)
    except OverflowError:
        return None
    return None if time_problem(parsed) else parsed


def _addresses(msg: Message) -> tuple[list[str], str]:
    """Every From address (lower case) and the first display name."""
    values = [decode_words(v) for v in (msg.get_all("From") or [])]
    pairs = [(n, a.strip().lower()) for n, a in getaddresses(values) if a.strip()]
    return [a for _, a in pairs], (pairs[0][0] if pairs else "")


def read_mail(raw: bytes) -> MailText:
    """Decode `raw` into a MailText (never raises for malformed MIME).

    A mail over MAX_MAIL_BYTES, with more than MAX_MIME_PARTS parts or that the email
    package cannot parse is read for its headers only, and `problem` says why.
    """
    problem = _too_complex(raw)
    if problem is None:
        try:
            return _read_parsed(email.message_from_bytes(raw))
        except Exception as exc:  # RecursionError included: hostile MIME, not our crash
            problem = f"the MIME structure cannot be read ({type(exc).__name__})"
    return _headers_only(raw, problem)


def _too_complex(raw: bytes) -> str | None:
    if len(raw) > MAX_MAIL_BYTES:
        return f"the mail is {len(raw)} bytes, over the {MAX_MAIL_BYTES // 1024 // 1024} MiB a notification can be"
    parts = len(_CONTENT_TYPE.findall(raw))
    if parts > MAX_MIME_PARTS:
        return f"the mail has {parts} MIME parts, over the {MAX_MIME_PARTS} a notification can have"
    return None


def _headers_only(raw: bytes, problem: str) -> MailText:
    end = raw.find(b"\r\n\r\n", 0, 65536)
    end = end if end >= 0 else raw.find(b"\n\n", 0, 65536)
    head = raw[: end if end >= 0 else 65536]
    try:
        msg = email.parser.BytesHeaderParser().parsebytes(head)
    except Exception:  # nothing readable at all: no sender, so nobody's evidence
        return MailText(from_addresses=[], from_display="", subject="", date=None, message_id=None,
                        problem=problem)
    mail = _envelope(msg)
    mail.problem = problem
    return mail


def _envelope(msg: Message) -> MailText:
    addresses, display = _addresses(msg)
    return MailText(
        from_addresses=addresses, from_display=display,
        subject=decode_words(msg.get("Subject")),
        date=header_date(decode_words(msg.get("Date"))),
        message_id=decode_words(msg.get("Message-ID")).strip() or None,
    )


def _read_parsed(msg: Message) -> MailText:
    mail = _envelope(msg)
    html, plain = [], []
    for part in _walk(msg):
        _collect_part(part, html, plain, mail.attached)
    bodies = [("html", html_to_text("\n".join(html)))] if html else []
    bodies += [("plain", normalise_text("\n".join(plain)))] if plain else []
    mail.bodies = [(label, text) for label, text in bodies if text.strip()]
    return mail


def _walk(msg: Message):
    """The parts of `msg` in order, at most _MAX_PARTS, MAX_MIME_DEPTH levels (no recursion)."""
    stack, seen = [(msg, 0)], 0
    while stack and seen < _MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part
        if part.is_multipart() and depth < MAX_MIME_DEPTH:
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))


def _collect_part(part: Message, html: list[str], plain: list[str],
                  attached: list[bytes]) -> None:
    """File one MIME part under html, plain or attached messages."""
    ctype = (part.get_content_type() or "").lower()
    if ctype == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            attached.append(inner[0].as_bytes())
        return
    if part.is_multipart() or ctype not in ("text/html", "text/plain"):
        return
    if (part.get("Content-Disposition") or "").lower().startswith("attachment"):
        return
    text = _part_text(part)
    (html if ctype == "text/html" else plain).append(text)


def _part_text(part: Message) -> str:
    """A leaf part's payload, transfer-decoded and charset-decoded leniently."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")[:_MAX_PART_TEXT]
    payload = payload[:_MAX_PART_TEXT]
    try:
        charset = part.get_content_charset() or "utf-8"
        return payload.decode(charset, errors="replace")
    except (LookupError, ValueError, MessageError):
        return payload.decode("utf-8", errors="replace")


def html_to_text(html: str) -> str:
    """Visible text of `html` with a line break at every block element."""
    with warnings.catch_warnings():
        # bs4 warns when markup "looks like a URL or a file name"; under a
        # warnings-as-errors policy that would turn a odd mail into a crash.
        warnings.simplefilter("ignore")
        soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    return normalise_text(soup.get_text())


def normalise_text(text: str) -> str:
    """Clean spaces, collapse runs of blanks, keep single line breaks."""
    text = clean_spaces(text).replace("\r\n", "\n").replace("\r", "\n")
    lines = (re.sub(r"[ \t\f\v]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# ---------------------------------------------------------------------------
# Forwarded mail

_FORWARD_MARKERS = re.compile(
    r"^[ >]*(?:-{2,}\s*Forwarded message\s*-{2,}"   # Gmail
    r"|-{2,}\s*Forwarded Message\s*-{2,}"           # Proton Mail
    r"|-{2,}\s*Original Message\s*-{2,}"            # Outlook
    r"|Begin forwarded message:)\s*$",              # Apple Mail
    re.I | re.M,
)
_HEADER_LINE = re.compile(r"^(From|Date|Sent|Subject|To|Cc|Reply-To)\s*:\s*(.*)$", re.I)


@dataclass
class Forwarded:
    """The provider message inside a forward, as the forward quotes it."""

    from_address: str
    from_display: str
    subject: str
    date_text: str
    body: str


def inner_forward(text: str) -> Forwarded | None:
    """The first forwarded message in `text`, parsed from its quoted header block.

    Only what follows the marker counts: a note the forwarder typed above it,
    and anything in the wrapper, is never read as provider text.
    """
    marker = _FORWARD_MARKERS.search(text)
    if marker is None:
        return None
    lines = [re.sub(r"^>\s?", "", line) for line in text[marker.end():].split("\n")]
    headers: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index].strip().replace("*", "")
        found = _HEADER_LINE.match(line)
        if found:
            headers.setdefault(found[1].lower(), found[2].strip())
        elif line and headers:
            break
        index += 1
    if "from" not in headers:
        return None
    _, address = (getaddresses([headers["from"]]) or [("", "")])[0]
    display = (getaddresses([headers["from"]]) or [("", "")])[0][0]
    return Forwarded(
        from_address=address.strip().lower(), from_display=display,
        subject=headers.get("subject", ""),
        date_text=headers.get("date") or headers.get("sent", ""),
        body=clean_forward_body("\n".join(lines[index:])),
    )


def clean_forward_body(text: str) -> str:
    """Drop Gmail's plain-text artefacts: [image: X], <tracking urls>, *bold*."""
    text = re.sub(r"\[image:[^\]]*\]", " ", text)
    text = re.sub(r"<(?:https?|mailto):[^>\s]*>", " ", text)
    text = re.sub(r"(?<![\w*])\*(?=\w)|(?<=[\w.:)])\*(?![\w*])", "", text)
    return normalise_text(text)


# ---------------------------------------------------------------------------
# SMS carried by a forwarder

_SMS_SUBJECT = re.compile(
    r"^\s*(?:(?:fwd?|fw)\s*:\s*)*(?:new\s+)?(?:sms|text message|message)\s*"
    r"(?:received\s+)?(?:from|:)\s*(?P<sender>[^\s:()\[\]]+)", re.I)
_SMS_LINE = re.compile(r"^\s*(?:sms\s+)?(?:from|sender|sender id)\s*:\s*(?P<sender>\S.*?)\s*$",
                       re.I | re.M)
_SMS_META = re.compile(r"^\s*(?:date|time|received|sent|to|sim|device|receiver|subject)"
                       r"\s*:.*$", re.I | re.M)
_JSON_SENDER_KEYS = ("sender", "from", "address", "originating_address", "phone")
_JSON_TEXT_KEYS = ("message", "body", "text", "msg", "content", "sms")


@dataclass
class Sms:
    """One forwarded SMS: the sender id the forwarder reports and the SMS text."""

    sender: str
    text: str
    where: str  # how the sender id was found, for explanations


def sms_in(subject: str, body: str) -> Sms | None:
    """Find a forwarded SMS by the convention in jobs/emails.py's docstring."""
    return _sms_json(body) or _sms_lines(body) or _sms_subject(subject, body)


def _sms_json(body: str) -> Sms | None:
    """{"sender": "MPESA", "message": "..."} (SMS-to-webhook style forwarders)."""
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(body[start:end + 1])
    except (ValueError, RecursionError):
        data = _loose_pairs(body[start:end + 1])  # JSON-ish: quotes missing, "=" used
    if not isinstance(data, dict):
        return None
    lowered = {str(k).lower(): v for k, v in data.items()}
    sender = next((lowered[k] for k in _JSON_SENDER_KEYS if isinstance(lowered.get(k), str)), None)
    text = next((lowered[k] for k in _JSON_TEXT_KEYS if isinstance(lowered.get(k), str)), None)
    if not sender or not text:
        return None
    return Sms(sender=sender.strip(), text=normalise_text(text), where="JSON field in the body")


_LOOSE_PAIR = re.compile(r"[\"']?(\w+)[\"']?\s*[:=]\s*" + r'"((?:[^"\\]|\\.)*)"')


def _loose_pairs(text: str) -> dict[str, str]:
    """key: "value" pairs from text that is almost, but not quite, JSON."""
    pairs = {}
    for key, value in _LOOSE_PAIR.findall(text):
        pairs.setdefault(key, value.replace('\\"', '"').replace("\\n", "\n"))
    return pairs


def _sms_lines(body: str) -> Sms | None:
    """A "From: MPESA" line; the SMS is the rest of the body minus metadata lines."""
    found = _SMS_LINE.search(body)
    if found is None:
        return None
    before, after = body[:found.start()], body[found.end():]
    text = _SMS_META.sub("", after) or _SMS_META.sub("", before)
    return Sms(sender=found["sender"].strip(), text=normalise_text(text),
               where=f"line {found[0].strip()!r} in the body")


def _sms_subject(subject: str, body: str) -> Sms | None:
    """Subject "SMS from MPESA" with the SMS text as the whole body."""
    found = _SMS_SUBJECT.match(subject or "")
    if found is None:
        return None
    return Sms(sender=found["sender"].strip(), text=normalise_text(_SMS_META.sub("", body)),
               where=f"subject {subject!r}")


def sms_id_key(sender: str) -> str:
    """Compare SMS sender ids loosely: "M-PESA", "mpesa" and "MPESA" are one id."""
    return re.sub(r"[^0-9a-z]", "", sender.lower())
