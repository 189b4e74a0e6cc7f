"""The models' foundation: UTC-aware times, JSON text, the base model bound to the database.

Times are stored as UTC and come back timezone-aware (UTCDateTimeField refuses naive
datetimes). Money is integer minor units plus an ISO currency. Phones are E.164.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from peewee import (
    DateTimeField,
    Model,
    TextField,
)

from webapp.storage.db import database

UTC = timezone.utc


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTimeField(DateTimeField):
    """A datetime stored as naive UTC and read back aware; naive input is refused."""

    def db_value(self, value):
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError(f"{self.name}: naive datetime {value!r}; pass an aware one")
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value):
        if value.__class__ is str and len(value) in (19, 26) and value[10] == " ":
            try:
                return utc_from_db(value)
            except ValueError:
                pass
        return self._slow_python_value(value)

    def as_read(self, value):
        """`value` as a read of what db_value(value) wrote gives it back: an aware datetime is that
        instant in UTC (both backends keep microseconds), without the text there and back."""
        if value.__class__ is datetime and value.tzinfo is not None:
            return value.astimezone(UTC)
        return self.python_value(self.db_value(value))

    def _slow_python_value(self, value):
        value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utc_from_db(value: str) -> datetime:
    """An aware UTC datetime from the text db_value writes ("YYYY-MM-DD HH:MM:SS[.ffffff]", naive
    UTC: SQLite). fromisoformat reads it in C, several times faster than peewee's strptime
    formats, which are tried in turn; other values go through UTCDateTimeField.python_value."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


_JSON = json.JSONEncoder(sort_keys=True, default=str)  # json.dumps(…, sort_keys=True, default=str), built once


class _NotPlain(Exception):
    """A value JSON would change (a non-str key, a type `default=str` turns into text)."""


def _plain_copy(value):
    """What json.loads(_JSON.encode(value)) gives for a value of plain JSON types: dicts with str
    keys (in sorted order), lists and tuples (as lists), str, int, float, bool, None."""
    kind = value.__class__
    if kind is dict:
        if not all(key.__class__ is str for key in value):
            raise _NotPlain
        return {key: _plain_copy(value[key]) for key in sorted(value)}
    if kind is list or kind is tuple:
        return [_plain_copy(item) for item in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    raise _NotPlain


class JSONField(TextField):
    """JSON kept as text, so SQLite and PostgreSQL read it the same way."""

    def db_value(self, value):
        return None if value is None else _JSON.encode(value)

    def python_value(self, value):
        return None if value is None else json.loads(value)

    def as_read(self, value):
        """`value` as a read of what db_value(value) wrote gives it back (a copy; dict keys sorted,
        tuples as lists), built directly for plain JSON values instead of encoded and decoded."""
        try:
            return _plain_copy(value)
        except (_NotPlain, RecursionError):
            return self.python_value(self.db_value(value))


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False
