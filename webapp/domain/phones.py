"""Phone numbers as E.164 strings, parsed with the phonenumbers library."""
from __future__ import annotations

import functools

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
    shown = raw.strip()[:40]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"phone number {shown!r} {_PARSE_PROBLEMS.get(exc.error_type, 'cannot be read')}") from None
    if not phonenumbers.is_valid_number(number):
        # A number written in full international form without "+" ("256772…") is
        # common in provider data; try that reading before giving up.
        if region is not None and text.isdigit():
            try:
                return to_e164("+" + text)
            except PhoneError:
                pass
        why = _LENGTH_PROBLEMS.get(phonenumbers.is_possible_number_with_reason(number), "")
        raise PhoneError(f"phone number {shown!r} is not a valid number{why}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Our words for the phonenumbers library's reasons (its own texts are not for staff).
_PARSE_PROBLEMS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "does not start with a known country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "is not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "is too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "is too short",
    phonenumbers.NumberParseException.TOO_LONG: "is too long",
}
_LENGTH_PROBLEMS = {
    phonenumbers.ValidationResult.TOO_SHORT: ": too few digits",
    phonenumbers.ValidationResult.TOO_LONG: ": too many digits",
    phonenumbers.ValidationResult.INVALID_LENGTH: ": wrong number of digits",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: ": unknown country code",
}


def try_e164(raw: str | None, region: str | None = None) -> str | None:
    """Like to_e164 but returns None for anything unreadable (for evidence, not input)."""
    if raw is not None and len(raw) <= 64:
        return _try_e164_cached(raw, region)  # a payer's phone is read several times a payment
    return _try_e164(raw, region)


def _try_e164(raw: str | None, region: str | None) -> str | None:
    try:
        return to_e164(raw, region)
    except PhoneError:
        return None


# phonenumbers takes ~50 µs a parse; the same few thousand phones come back all day.
_try_e164_cached = functools.lru_cache(maxsize=4096)(_try_e164)


_MASK = frozenset("*xX•#?")


def same_number(a: str, b: str) -> bool:
    """Whether two phones may be one number: the same digits, the same last 9 digits when one
    is written locally, or a masked one ("0712***678") whose visible ends fit the other."""
    if any(c in _MASK for c in a + b):
        masked, full = (a, b) if any(c in _MASK for c in a) else (b, a)
        parts = [p for p in "".join(c if c.isdigit() else ("*" if c in _MASK else "") for c in masked).split("*") if p]
        digits = "".join(c for c in full if c.isdigit())
        if not parts:
            return True
        return digits.endswith(parts[-1]) and parts[0].lstrip("0") in digits
    da, db = ("".join(c for c in x if c.isdigit()) for x in (a, b))
    return da == db or (min(len(da), len(db)) >= 9 and da[-9:] == db[-9:])
