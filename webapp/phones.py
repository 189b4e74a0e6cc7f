"""Phone numbers as E.164 strings, parsed with the phonenumbers library."""
from __future__ import annotations

import phonenumbers


class PhoneError(ValueError):
    """A phone number that cannot be read as a valid number."""


def to_e164(raw: str | None, region: str | None = None) -> str:
    """Return `raw` as E.164 ("+256772123456"), reading local forms in `region`.

    Raises PhoneError naming the input when it is empty or not a valid number.
    """
    text = (raw or "").strip()
    if not text:
        raise PhoneError("phone number is empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text[0].isdigit() and region is None:
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"phone number {raw!r} cannot be read: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        # A number written in full international form without "+" ("256772…") is
        # common in provider data; try that reading before giving up.
        if region is not None and text.isdigit():
            try:
                return to_e164("+" + text)
            except PhoneError:
                pass
        raise PhoneError(f"phone number {raw!r} is not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_e164(raw: str | None, region: str | None = None) -> str | None:
    """Like to_e164 but returns None for anything unreadable (for evidence, not input)."""
    try:
        return to_e164(raw, region)
    except PhoneError:
        return None


def whatsapp_digits(e164: str) -> str:
    """The digits-only international form wppconnect wants: "+256772123456" -> "256772123456"."""
    return e164.lstrip("+")
