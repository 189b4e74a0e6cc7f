"""Money as integer minor units plus an ISO 4217 currency.

Amounts travel as decimal strings ("5000.00") at the edges and as integers inside.
Every amount read from outside goes through `to_minor`: its text is checked with a
bounded pattern before `Decimal` sees it, so no input costs more than a few
microseconds, and it is refused above MAX_MINOR. Currencies are the ISO 4217 list
that pycountry ships (kept current with the iso-codes project), less the codes that
are not money one can be paid in, plus ioTec's sandbox currency.
"""
from __future__ import annotations

import functools
import math
import re
from decimal import Decimal

# ISO 4217 minor-unit exponents that differ from 2. ITX is ioTec's sandbox currency.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "ITX": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}
# In ISO 4217 but with no minor unit ("N.A."): metals, bond-market units, SDR, test and
# "no currency" codes. Nobody pays a request in them.
_NOT_MONEY = frozenset({"XAG", "XAU", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU",
                        "XUA", "XTS", "XXX", "XAD"})
_EXTRA = frozenset({"ITX"})

# The largest amount accepted anywhere, in minor units: 15 digits (9,999,999,999,999.99
# in a two-decimal currency). A signed 64-bit column holds 9.2e18, so sums of thousands
# of maximal amounts (balances, totals, charts) still fit.
MAX_MINOR = 10**15 - 1
_MAX_TEXT = 40  # characters of an amount's text looked at, spaces included
# Decimal notation only: digits, an optional point and decimals. No sign, exponent,
# grouping, NaN or Infinity. Matched on at most _MAX_TEXT characters, so it is cheap.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


@functools.cache
def currencies() -> frozenset[str]:
    """The three-letter codes Paywatch accepts (read from pycountry once, on first use)."""
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies) - _NOT_MONEY | _EXTRA


def exponent(currency: str) -> int:
    """Number of minor-unit digits of `currency` (2 unless ISO 4217 says otherwise)."""
    return _EXPONENTS.get(currency.upper(), 2)


def normalize_currency(currency: str) -> str:
    """Return the upper-case ISO 4217 code or raise MoneyError."""
    code = (currency or "")[:8].strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise MoneyError(f"currency must be a three-letter ISO code, got {currency[:20]!r}")
    if code not in currencies():
        raise MoneyError(f"{code} is not an ISO 4217 currency")
    return code


def max_amount(currency: str) -> str:
    """MAX_MINOR in `currency`'s decimal notation, for messages and docs."""
    return to_decimal_string(MAX_MINOR, currency)


def to_minor(amount: str | int | Decimal, currency: str) -> int:
    """Parse a decimal amount ("5000.00", "5000", 5000) into minor units, 0…MAX_MINOR.

    Raises MoneyError when the amount is not plain decimal notation, is negative, has
    more decimals than the currency allows (no silent rounding of money) or is too big.
    """
    if isinstance(amount, bool) or isinstance(amount, float):
        raise MoneyError("amount must be a decimal string, not a float")
    if isinstance(amount, int):
        if amount < 0:
            raise MoneyError(f"amount {amount} is negative")
        if amount > MAX_MINOR:
            raise MoneyError(f"amount is above the maximum of {max_amount(currency)} {currency.upper()}")
        amount = str(amount)
    elif isinstance(amount, Decimal):
        if not amount.is_finite():
            raise MoneyError("amount is not a finite number")
        if amount.adjusted() > 20:  # checked before str(): "1E+999999" must not be written out
            raise MoneyError(f"amount is above the maximum of {max_amount(currency)} {currency.upper()}")
        amount = str(amount)
    if not isinstance(amount, str):
        raise MoneyError("amount must be a decimal string")
    text = amount[: _MAX_TEXT + 1].strip()
    shown = text[:24] + ("…" if len(text) > 24 else "")
    if len(amount) > _MAX_TEXT:
        raise MoneyError(f"amount {shown!r} is too long: at most {_MAX_TEXT} characters")
    found = _AMOUNT.fullmatch(text)
    if found is None:
        if text.startswith("-") and _AMOUNT.fullmatch(text[1:]):
            raise MoneyError(f"amount {shown!r} is negative")
        raise MoneyError(f"amount {shown!r} is not a decimal number (digits, an optional point and decimals; "
                         "no sign, exponent or separators)")
    whole, fraction = found[1], found[2] or ""
    digits = exponent(currency)
    if fraction[digits:].strip("0"):
        raise MoneyError(f"amount {shown!r} has more decimals than {currency.upper()} allows ({digits})")
    minor = int(whole + fraction[:digits].ljust(digits, "0"))
    if minor > MAX_MINOR:
        raise MoneyError(f"amount {shown!r} is above the maximum of {max_amount(currency)} {currency.upper()}")
    return minor


def minor_of_double(value: object, currency: str) -> int | None:
    """A JSON number a provider sends as a double (ioTec), in minor units; None unless exact and in range.

    The shortest text that reads back as the same double is the decimal the sender meant
    (10.1 is "10.1", not 10.0999…), so it is read through to_minor's rules.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not 0 <= value <= MAX_MINOR:  # cheap for any int or float; to_minor checks the scale
        return None
    text = str(value) if isinstance(value, int) else repr(value)
    try:
        return to_minor(text, currency)
    except MoneyError:
        return None


def to_decimal_string(amount_minor: int, currency: str) -> str:
    """Format minor units as the API's decimal string: 500000, "PKR" -> "5000.00"."""
    digits = exponent(currency)
    value = Decimal(amount_minor).scaleb(-digits)
    return f"{value:.{digits}f}"


def display(amount_minor: int, currency: str) -> str:
    """Human form with thousands separators: "PKR 5,000.00"."""
    digits = exponent(currency)
    value = Decimal(amount_minor).scaleb(-digits)
    return f"{currency.upper()} {value:,.{digits}f}"


# ---------------------------------------------------------------- amounts as staff type them

# Staff type amounts the way Paywatch shows them (`display`: "UGX 5,000", "USD 5,000.50"):
# a point before the decimals, and the thousands grouped by commas or spaces (a plain,
# no-break, narrow no-break or thin space, as phones and spreadsheets paste them). South
# Asian currencies also take lakh grouping ("5,00,000"). Anything else that could be read
# two ways is refused with the reason, never guessed: "5.000" (thousands or five?),
# "5,50" (a decimal comma), "50,00" (a misplaced group).
_SPACES = " \u00a0\u202f\u2009"
_LAKH_CURRENCIES = frozenset({"INR", "PKR", "NPR", "BDT", "LKR"})
_GROUPED = re.compile(r"[0-9]{1,3}(?:([,%s])[0-9]{3})(?:\1[0-9]{3})*" % _SPACES)
_GROUPED_SPACES = re.compile(r"[0-9]{1,3}(?:[%s][0-9]{3})+" % _SPACES)
_LAKH = re.compile(r"[0-9]{1,2}(?:,[0-9]{2})*,[0-9]{3}")
_TYPED = re.compile(r"[0-9,.%s]+" % _SPACES)


def parse_typed(text: str, currency: str) -> int:
    """An amount as staff type it in a form ("5,000", "5 000", "5,000.50"), in minor units.

    Group separators are dropped only when every group is well formed; what could be read
    two ways raises MoneyError naming the problem. The rest is `to_minor`'s rules (decimals
    the currency allows, the maximum). The API keeps plain decimal notation only.
    """
    raw = (text or "")[: _MAX_TEXT + 1]
    stripped = raw.strip(_SPACES + "\t\n\r")
    shown = stripped[:24] + ("…" if len(stripped) > 24 else "")
    code = currency.upper()
    if len(text or "") > _MAX_TEXT:
        raise MoneyError(f"amount {shown!r} is too long: at most {_MAX_TEXT} characters")
    if stripped.startswith("-") and _TYPED.fullmatch(stripped[1:]):
        raise MoneyError(f"amount {shown!r} is negative")
    if not _TYPED.fullmatch(stripped or "x"):
        raise MoneyError(f"amount {shown!r} is not a number (digits, with a point before the decimals, "
                         "e.g. 5000, 5,000 or 5,000.50)")
    whole, point, fraction = stripped.partition(".")
    if "." in fraction:
        raise MoneyError(f"amount {shown!r} has more than one point: group thousands with commas or spaces "
                         "(5,000,000) and use the point only before the decimals")
    if any(c in fraction for c in "," + _SPACES):
        raise MoneyError(f"amount {shown!r} has separators after the point: write the decimals as digits only")
    if point and not whole:
        raise MoneyError(f"amount {shown!r} needs a digit before the point (0{stripped})")
    if any(c in whole for c in "," + _SPACES):
        lakh = code in _LAKH_CURRENCIES and _LAKH.fullmatch(whole)
        if not (lakh or _GROUPED.fullmatch(whole) or _GROUPED_SPACES.fullmatch(whole)):
            last = re.split(r"[,%s]" % _SPACES, whole)[-1]
            if not point and "," in whole and whole.count(",") == 1 and len(last) in (1, 2):
                raise MoneyError(f"amount {shown!r} looks like a decimal comma: use a point before the decimals "
                                 f"({whole.replace(',', '.')})")
            if "," in whole and any(c in whole for c in _SPACES):
                raise MoneyError(f"amount {shown!r} mixes commas and spaces: group thousands with one of them")
            raise MoneyError(f"amount {shown!r} has misplaced separators: thousands go in groups of three "
                             "digits (5,000 or 5 000)")
        whole = re.sub(r"[,%s]" % _SPACES, "", whole)
    elif point and len(fraction) == 3 and exponent(code) < 3:
        raise MoneyError(f"amount {shown!r} is ambiguous: a point before three digits may group thousands. "
                         f"Write {whole}{fraction} or {whole},{fraction} for thousands, "
                         f"or at most {exponent(code)} decimals" if exponent(code) else
                         f"amount {shown!r} is ambiguous: {code} has no decimals, so the point may group thousands. "
                         f"Write {whole}{fraction} or {whole},{fraction}")
    try:
        return to_minor(whole + point + fraction if fraction else whole, code)
    except MoneyError as exc:  # name the amount as it was typed, not as it was cleaned
        raise MoneyError(str(exc).replace(repr(whole + point + fraction if fraction else whole), repr(shown), 1)) \
            from None
