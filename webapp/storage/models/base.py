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


class JSONField(TextField):
    """JSON kept as text, so SQLite and PostgreSQL read it the same way."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True, default=str)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False
