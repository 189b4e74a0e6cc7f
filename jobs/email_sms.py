"""SMS and app notifications carried by forwarder apps: envelopes and joined messages.

`notification_in()` reads the envelope of app-notification forwarders
("App: … / Title: … / Text: … / Posted: …", also "Package:"/"Application:",
"Message:"/"Body:"): the candidate sender ids are the Title (an SMS app shows
the SMS sender there) then the App name. `split_messages()` cuts a text that
holds several SMS (a forwarder batching, or a user pasting a thread) into one
text per message: at separator lines, at repeated envelope blocks and at lines
or clauses that start a new provider message; a cut is kept only when every
piece carries an amount, so a one-message SMS written over several lines
(old M-Pesa layout) stays whole.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from jobs.email_text import Sms, normalise_text

_MAX_PIECES = 20
_APP = re.compile(r"^\s*(?:app|application|package|app name)\s*:\s*(?P<v>\S.*?)\s*$", re.I | re.M)
_TITLE = re.compile(r"^\s*(?:title|notification title)\s*:\s*(?P<v>\S.*?)\s*$", re.I | re.M)
_TEXT = re.compile(r"^\s*(?:text|message|body|content|notification text)\s*:\s*", re.I | re.M)
_META = re.compile(r"^\s*(?:posted|time|date|received|sent|device|sim|id|key)\s*:.*$", re.I | re.M)


@dataclass
class Notification:
    """An app notification: where it came from and its text."""

    senders: tuple[str, ...]
    text: str


def notification_in(body: str) -> Notification | None:
    """The first App/Title/Text envelope in `body`, or None."""
    app, title, text = _APP.search(body), _TITLE.search(body), _TEXT.search(body)
    if text is None or (app is None and title is None):
        return None
    rest = body[text.end():]
    ends = [m.start() for m in (_META.search(rest), _APP.search(rest), _TITLE.search(rest)) if m is not None]
    stop = min(ends, default=len(rest))
    senders = tuple(dict.fromkeys(m["v"] for m in (title, app) if m is not None))
    return Notification(senders, normalise_text(rest[:stop]))


def notifications_in(body: str) -> list[Notification]:
    """Every App/Title/Text envelope in `body` (a forwarder may batch several)."""
    starts = [m.start() for m in _APP.finditer(body)] or [0]
    found = []
    for begin, end in zip(starts, [*starts[1:], len(body)]):
        one = notification_in(body[begin:end])
        if one is not None:
            found.append(one)
        if len(found) >= _MAX_PIECES:
            break
    return found


def as_sms(note: Notification, sender: str) -> Sms:
    return Sms(sender=sender, text=note.text, where=f"app notification ({', '.join(note.senders)})")


_SEPARATOR = re.compile(r"^\s*[-=_~*#]{3,}\s*$", re.M)
# Where a new provider message starts (a clause or a line); see providers.md P1-P11.
_START = re.compile(
    r"(?:(?<=\s)|^)(?=(?-i:[A-Z0-9]{9,12})\s+Confirmed\b)"
    r"|^(?=\s*(?:RECEIVED\.|REVERSED\.|SENT\.|You have received|Dear\b|PKR\s|Rs\.?\s?\d|Received Rs|"
    r"INR\s|Credit Alert|Txn ID|Y'ello|\w+, PKR\s))", re.I | re.M)
_MONEYISH = re.compile(r"(?:KSH|UGX|PKR|INR|RS\.?|USD|\$|€|£|₹)\s?\d", re.I)


def split_messages(text: str) -> list[str]:
    """One text per message (see the module docstring); the text itself when it is one."""
    pieces = [p for p in _SEPARATOR.split(text) if p.strip()]
    if not pieces:
        return [text]
    out: list[str] = []
    for piece in pieces:
        out.extend(_split_starts(piece))
    if len(out) > _MAX_PIECES or not all(_MONEYISH.search(p) for p in out):
        return [text] if len(pieces) < 2 or not all(_MONEYISH.search(p) for p in pieces) else pieces
    return out


def _split_starts(text: str) -> list[str]:
    cuts = sorted({m.start() for m in _START.finditer(text) if m.start() > 0})[:_MAX_PIECES]
    if not cuts:
        return [text]
    bounds = [0, *cuts, len(text)]
    parts = [text[a:b].strip() for a, b in zip(bounds, bounds[1:])]
    parts = [p for p in parts if p]
    if len(parts) > 1 and all(_MONEYISH.search(p) for p in parts):
        return parts
    return [text]
