"""Reading amounts, currencies and dates out of notification text.

Pure functions, no I/O. Amounts become integer minor units through
`webapp.domain.money.to_minor`, so nothing is ever rounded; dates become aware UTC
datetimes read in the provider's time zone. Formats follow
shared/providers.md §1.7 (amounts) and §1.8 (dates).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from webapp.domain.input_bounds import EARLIEST, LATEST, time_problem
from webapp.domain.money import MoneyError, exponent, normalize_currency, to_minor


class ValueReadError(ValueError):
    """A captured amount, currency or date that cannot be read without guessing."""


# Spaces that survive HTML→text and SMS copies: NBSP, narrow NBSP, thin and
# figure spaces, plus zero-width characters that split digits invisibly.
_SPACES = dict.fromkeys(map(ord, "\u00a0\u202f\u2009\u2007\u2002\u2003\u2005\u2006"), " ")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
# Control characters (tab and line breaks kept) and the lone surrogates the email package
# makes of undecodable header bytes: no database column stores a NUL or a surrogate.
_UNSTORABLE = {**dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F], None),
               **dict.fromkeys(range(0xD800, 0xE000), "\ufffd")}


def clean_spaces(text: str) -> str:
    """Replace exotic spaces with ASCII spaces, drop zero-width and control characters."""
    return text.translate(_SPACES).translate(_INVISIBLE).translate(_UNSTORABLE)


# ---------------------------------------------------------------------------
# Currency

# Symbols and local spellings → ISO code. "Rs" is deliberately absent: it means
# PKR in Pakistan and INR in India, so the provider's own default decides.
_SYMBOLS = {
    "$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "₹": "INR", "KSH": "KES",
    "KSHS": "KES", "USH": "UGX", "USHS": "UGX", "C$": "CAD", "CA$": "CAD", "A$": "AUD",
    "¥": "JPY", "₨": None, "RS": None, "RS.": None,
}


def read_currency(text: str | None, default: str, aliases: dict[str, str] | None = None) -> str:
    """The ISO code a captured currency text stands for, else `default`.

    `aliases` (the provider's own table, upper-case keys) win over the built-in
    symbol table. An unknown non-empty symbol raises ValueReadError.
    """
    token = clean_spaces(text or "").strip().upper()
    if not token:
        return normalize_currency(default)
    for table in (aliases or {}, _SYMBOLS):
        if token in table:
            return normalize_currency(table[token] or default)
    letters = token.rstrip(".")
    if len(letters) == 3 and letters.isalpha():
        try:
            return normalize_currency(letters)
        except MoneyError as exc:
            raise ValueReadError(str(exc)) from None
    raise ValueReadError(f"unknown currency {text[:20]!r}")


# ---------------------------------------------------------------------------
# Amounts

# The numeric core: digits joined by separators (possibly with spaces around
# them, as HTML→text gives "$ 60 . 00"), or by a space before a 3-digit group.
_MAX_AMOUNT_TEXT = 64  # "Ksh Ksh 4,870.00" fits many times over; 200,000 digits are not an amount
_CORE = re.compile(r"\d+(?:\s*[.,'’]\s*\d+|\s\d{3}(?!\d))*")
_MINUS = re.compile(r"(?:^|\s)[-−–]\s*(?:[^\d\s]{0,4}\.?\s*)?\d|\(\s*[^\d]{0,4}\s*\d[^)]*\)")


def parse_amount(text: str, currency: str) -> int:
    """Minor units of a positive amount as notifications write it.

    Accepts a currency prefix or suffix ("Ksh Ksh4,870.00", "$20.00 USD",
    "Rs. 8,000/-"), lakh grouping ("2,45,210.00"), dots as thousands
    ("55.000.00", "45.000"), one decimal ("1000.0") and split spans
    ("$ 60 . 00"). Raises ValueReadError for anything ambiguous, negative or
    with more decimals than `currency` has.
    """
    cleaned = clean_spaces((text or "")[:_MAX_AMOUNT_TEXT + 1]).strip()
    if len(cleaned) > _MAX_AMOUNT_TEXT:
        raise ValueReadError(f"amount text {cleaned[:24]!r}… is over {_MAX_AMOUNT_TEXT} characters: not an amount")
    if _MINUS.search(cleaned):
        raise ValueReadError(f"amount {text!r} is negative (money out)")
    cores = _CORE.findall(cleaned)
    if len(cores) != 1:
        raise ValueReadError(f"amount {text!r} does not hold exactly one number")
    digits = _decimal_text(re.sub(r"\s+", "", cores[0]).replace("’", "'"), currency)
    try:
        return to_minor(digits, currency)
    except MoneyError as exc:
        raise ValueReadError(str(exc)) from None


def _decimal_text(core: str, currency: str) -> str:
    """Turn "2,45,210.00" into "245210.00" by deciding which separator is decimal."""
    core = core.replace("'", ",") if "'" in core and "." in core else core.replace("'", "")
    seps = [c for c in core if c in ".,"]
    if not seps:
        return core
    groups = re.split(r"[.,]", core)
    last_sep = seps[-1]
    if len(set(seps)) == 2:
        decimal_sep = last_sep  # both present: the last one is the decimal
    elif len(seps) == 1:
        decimal_sep = _single_separator(groups, last_sep, currency)
    else:
        # one kind repeated: "1,000,000" is all thousands, "55.000.00" ends in decimals
        decimal_sep = None if len(groups[-1]) == 3 else last_sep
    if len(set(seps)) == 2 and core.count(decimal_sep) != 1:
        raise ValueReadError(f"amount {core!r} mixes separators ambiguously")
    if decimal_sep is None:
        whole, fraction = groups, None
    else:
        whole, fraction = groups[:-1], groups[-1]
    _check_grouping(whole, core)
    return "".join(whole) + ("." + fraction if fraction is not None else "")


def _single_separator(groups: list[str], sep: str, currency: str) -> str | None:
    """One separator: thousands when a short group is followed by exactly 3 digits."""
    lead, tail = groups
    if len(tail) == 3 and 1 <= len(lead) <= 3 and not (sep == "." and exponent(currency) == 3):
        return None
    return sep


def _check_grouping(whole: list[str], core: str) -> None:
    """Thousands groups after the first have 3 digits (2 allowed: Indian lakh)."""
    if not whole[0] or len(whole[0]) > 3 and len(whole) > 1:
        raise ValueReadError(f"amount {core!r} has a malformed leading group")
    inner, last = whole[1:-1], whole[-1]
    if len(whole) > 1 and (len(last) != 3 or any(len(g) not in (2, 3) for g in inner)):
        raise ValueReadError(f"amount {core!r} has malformed digit groups")


# ---------------------------------------------------------------------------
# Dates

# Tried in order when a provider lists none. Day-first, as every provider in
# providers.md that writes numeric dates is day-first (US mail uses month names).
DEFAULT_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d",
    "%d-%m-%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
    "%d/%m/%y %I:%M %p", "%d/%m/%Y %I:%M %p", "%d/%m/%y %H:%M",
    "%d-%b-%Y %H:%M:%S", "%d-%b-%Y %H:%M", "%d-%b-%Y %I:%M %p", "%d-%b-%y %I:%M %p",
    "%d-%b-%y %H:%M", "%d/%b/%Y %I:%M %p", "%d %b %Y, %I:%M %p", "%d %b %Y %I:%M %p",
    "%d-%m-%y %H:%M:%S", "%d-%m-%y %H:%M", "%d-%m-%Y",
    "%d-%m-%y", "%d/%m/%Y", "%d/%m/%y", "%d-%b-%Y", "%d-%b-%y", "%d%b%y",
    "%B %d, %Y %I:%M %p", "%b %d, %Y %I:%M %p", "%B %d, %Y", "%b %d, %Y", "%d %B %Y",
    "%d %b %Y",
)

_TZ_ABBREVIATIONS = r"\b(?:PST|PDT|EST|EDT|CST|CDT|MST|MDT|IST|PKT|EAT|UTC|GMT)$"


def _normalise_date_text(text: str) -> str:
    """Undo notification damage: spaced em dashes, "at", glued AM/PM, 9-digit fractions."""
    text = clean_spaces(text)
    text = re.sub(r"\s*[—–]\s*", "-", text)
    text = re.sub(r"\s+at\s+|\s*,\s*at\s+", " ", text, flags=re.I)
    text = re.sub(r"(\d)\s*([AaPp])\.?\s*[Mm]\.?\b", lambda m: f"{m[1]} {m[2].upper()}M", text)
    text = re.sub(r"(\d{2}:\d{2}:\d{2}\.\d{6})\d+", r"\1", text)  # %f takes 6 digits
    text = re.sub(_TZ_ABBREVIATIONS, "", text.strip(), flags=re.I)
    return re.sub(r"\s+", " ", text).strip(" ,.")


def zone(name: str | None) -> tzinfo:
    """The IANA zone `name` (UTC when empty); raises ValueReadError when unknown."""
    if not name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueReadError(f"unknown time zone {name!r}") from exc


def parse_local_datetime(text: str, formats: tuple[str, ...] | list[str],
                         tz: tzinfo) -> tuple[datetime, bool]:
    """Read `text` with the first matching format as local time in `tz`.

    Returns (aware UTC datetime, has_time). Raises ValueReadError when no
    format fits: a date is never guessed.
    """
    cleaned = _normalise_date_text(text)
    for fmt in formats or DEFAULT_DATE_FORMATS:
        try:
            value = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        has_time = any(code in fmt for code in ("%H", "%I"))
        try:
            moment = value.replace(tzinfo=tz).astimezone(timezone.utc)
        except OverflowError:
            moment = None
        if moment is None or time_problem(moment):
            raise ValueReadError(f"date {text[:40]!r} is outside {EARLIEST:%Y}–{LATEST:%Y}")
        return moment, has_time
    raise ValueReadError(f"date {text!r} matches none of the provider's formats")


def on_day_at(day_utc: datetime, tz: tzinfo, moment: datetime | None) -> datetime:
    """A date-only reading combined with `moment`'s clock when it falls on that day.

    Some alerts carry a date but no time (HDFC): the mail's own Date header is
    then the best clock, but only when it is the same local day; otherwise the
    start of the day is the honest answer.
    """
    local_day: date = day_utc.astimezone(tz).date()
    if moment is not None and moment.astimezone(tz).date() == local_day:
        return moment.astimezone(timezone.utc)
    return datetime.combine(local_day, time(0, 0), tz).astimezone(timezone.utc)


def as_decimal_string(amount_minor: int, currency: str) -> str:
    """"PKR 5,000.00"-free form for explanations: 500000 PKR → "5000.00"."""
    digits = exponent(currency)
    return f"{Decimal(amount_minor).scaleb(-digits):.{digits}f}"
