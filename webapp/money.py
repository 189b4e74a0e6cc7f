"""Money as integer minor units plus an ISO 4217 currency.

Amounts travel as decimal strings ("5000.00") at the edges and as integers inside.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents that differ from 2. ITX is ioTec's sandbox currency.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "ITX": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


def exponent(currency: str) -> int:
    """Number of minor-unit digits of `currency` (2 unless ISO 4217 says otherwise)."""
    return _EXPONENTS.get(currency.upper(), 2)


def normalize_currency(currency: str) -> str:
    """Return the upper-case three-letter code or raise MoneyError."""
    code = (currency or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(f"currency must be a three-letter ISO code, got {currency!r}")
    return code


def to_minor(amount: str | int | Decimal, currency: str) -> int:
    """Parse a decimal amount ("5000.00", "5000", 5000) into minor units.

    Raises MoneyError when the amount is not a number, is negative, or has more
    decimals than the currency allows (no silent rounding of money).
    """
    if isinstance(amount, float):
        raise MoneyError("amount must be a decimal string, not a float")
    try:
        value = Decimal(str(amount).strip())
    except (InvalidOperation, ValueError):
        raise MoneyError(f"amount {amount!r} is not a decimal number") from None
    if not value.is_finite():
        raise MoneyError(f"amount {amount!r} is not a finite number")
    if value < 0:
        raise MoneyError(f"amount {amount!r} is negative")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(
            f"amount {amount!r} has more decimals than {currency.upper()} allows"
        )
    return int(scaled)


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
