"""Bounds every outside input is held to: ids, times, text, JSON shape (amounts: webapp.domain.money).

Pure checks that return a problem (a short sentence) or None, so the API, the forms and
the jobs word their own errors. Each check costs at most one pass over its input, and
inputs are already size-capped before they get here.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

from werkzeug.routing import IntegerConverter

MAX_ID = 2**63 - 1  # the largest id a signed 64-bit key column holds
# Money Paywatch watches moves in this century: a time outside it is a typo or an attack,
# and near the ends of datetime's range a time-zone shift overflows.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
TIME_RANGE = f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
MAX_JSON_DEPTH = 32  # objects and arrays inside each other, the body itself counted
MAX_TIME_TEXT = 64

# C0 controls and DEL; a note may keep tab, line feed and carriage return. Lone
# surrogates cannot be stored as UTF-8 (PostgreSQL refuses them), so they go too.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class IdConverter(IntegerConverter):
    """`<int:…>` in every URL: 1–19 digits and at most MAX_ID, so a huge id is a 404, not a 500."""

    regex = r"\d{1,19}"

    def __init__(self, map, *args, **kwargs):  # noqa: A002 (werkzeug's name)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def text_problem(value: str, *, max_length: int, multiline: bool = False) -> str | None:
    """Why `value` is not acceptable text (too long, control characters), else None."""
    if len(value) > max_length:
        return f"must be at most {max_length} characters"
    found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
    if found:
        allowed = " (tab and line breaks are allowed)" if multiline else ""
        return f"contains the control character U+{ord(found[0]):04X} at position {found.start() + 1}{allowed}"
    return None


def unstorable(value: str) -> bool:
    """True when `value` holds a NUL or a lone surrogate, which no database column can keep."""
    return _UNSTORABLE.search(value) is not None


def time_problem(value: datetime) -> str | None:
    """Why an aware time is out of range, else None."""
    return None if EARLIEST <= value < LATEST else TIME_RANGE


def date_problem(value: date) -> str | None:
    """Why a calendar date (a filter's from/to) is out of range, else None."""
    if not EARLIEST.date() <= value < LATEST.date():
        return f"Pick a date between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}."
    return None


def json_problem(data: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """(top-level field, problem) for JSON nested too deep or holding unstorable text, else None.

    Walks with an explicit stack: depth never costs Python recursion.
    """
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, field = stack.pop()
        if isinstance(value, dict):
            if depth > max_depth:
                return field or "body", f"is nested deeper than {max_depth} levels"
            for key, item in value.items():
                where = field or key
                if unstorable(key):
                    return where, "a key holds a NUL or an unpaired surrogate character"
                stack.append((item, depth + 1, where))
        elif isinstance(value, list):
            if depth > max_depth:
                return field or "body", f"is nested deeper than {max_depth} levels"
            stack.extend((item, depth + 1, field) for item in value)
        elif isinstance(value, str) and unstorable(value):
            return field or "body", "holds a NUL or an unpaired surrogate character"
    return None
