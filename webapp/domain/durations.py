"""Durations in words for people: seconds under a minute ("45 s"), never "0 min".

One helper for every text a person reads — WhatsApp alerts, evidence cards, alert
mails, the 429 page, the dashboard — so the same wait reads the same everywhere.
"""
from __future__ import annotations

from datetime import timedelta


def spoken(seconds: float | timedelta | None) -> str:
    """A short human duration: "45 s", "12 min", "3 h 5 min", "2 d 4 h"; "—" for None."""
    if seconds is None:
        return "—"
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    seconds = int(round(abs(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def seconds_until(seconds: float) -> str:
    """A wait in whole seconds up to two minutes ("in 1 second", "in 45 seconds"), else spoken ("in 3 min")."""
    whole = max(1, int(-(-seconds // 1)))  # rounded up: "try again in 0 seconds" would be wrong
    if whole <= 120:
        return f"in {whole} second{'s' if whole != 1 else ''}"
    return f"in {spoken(whole)}"
