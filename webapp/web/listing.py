"""The list pages' one way to filter and page: shared filters (narrow) and keyset pages.

Pages are newest first by id, `?before=<id>` for the next page.

Offset pagination rereads every skipped row and shifts while rows arrive; a keyset
reads one page through the primary key whatever the table's size.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from flask import request
from peewee import ModelSelect

from webapp.config import settings
from webapp.domain import phones
from webapp.domain.input_bounds import MAX_ID
from webapp.storage import search

_NON_DIGIT = re.compile(r"\D")
DEFAULT_SIZE = 50
MAX_SIZE = 200


@dataclass
class Page:
    items: list[Any]
    next_before: int | None  # pass as ?before= for the next (older) page
    size: int

    @property
    def has_next(self) -> bool:
        return self.next_before is not None


def _int_arg(name: str) -> int | None:
    """A positive id-sized number from the query string; None when absent or not one (a forged
    `before` reads the first page rather than failing)."""
    value = request.args.get(name, "")
    if not (0 < len(value) <= 19 and value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def keyset_page(query: ModelSelect, model, *, size: int | None = None) -> Page:
    """One page of `query` (already filtered), newest first, after `?before=` from the URL."""
    size = min(size or _int_arg("size") or DEFAULT_SIZE, MAX_SIZE)
    before = _int_arg("before")
    if before is not None:
        query = query.where(model.id < before)
    rows = list(query.order_by(model.id.desc()).limit(size + 1))
    more = len(rows) > size
    rows = rows[:size]
    return Page(items=rows, next_before=rows[-1].id if more and rows else None, size=size)


def args_without(*names: str) -> dict[str, str]:
    """The current query string minus `names` (to build the next-page link keeping filters)."""
    return {k: v for k, v in request.args.items() if k not in names and v != ""}


def filtered_page(query: ModelSelect | None, model) -> tuple[Page | None, int]:
    """(page, HTTP status) for a list whose filters may not parse (`query` None).

    A bad filter is 400 for a full page, but 200 for an HTMX poll: htmx only swaps in
    2xx answers, and the fragment shows the filter error.
    """
    from webapp.web.htmx import is_partial_request

    if query is None:
        return None, 200 if is_partial_request() else 400
    return keyset_page(query, model), 200


def text_condition(q: str, *text_fields, phone_field):
    """Case-insensitive "contains" over `text_fields` and the phone, also in its E.164 and digit forms.

    For requests and payments (whose searched columns are `text_fields` + the phone) the search
    index answers it (webapp.storage.search); otherwise, and for terms under 3 characters,
    peewee's contains(), which escapes % and _ and is ILIKE on PostgreSQL, LIKE on SQLite.
    """
    terms = [q]
    digits = _NON_DIGIT.sub("", q)
    if len(digits) >= 3:
        # "0772 123" is typed the local way; stored numbers are "+256772123…".
        terms.append(digits.lstrip("0") or digits)
    e164 = phones.try_e164(q, settings().phone_region)
    model = phone_field.model
    indexed = None
    if set(search.COLUMNS.get(model._meta.table_name, ())) == {f.column_name for f in (*text_fields, phone_field)}:
        indexed = search.contains(model, terms)
    if indexed is not None:
        condition = indexed
    else:
        condition = phone_field.contains(q)
        for field in text_fields:
            condition |= field.contains(q)
        for term in terms[1:]:
            condition |= phone_field.contains(term)
    if e164:
        condition |= phone_field == e164
    return condition


def narrow(query: ModelSelect, filters, *, time_field, amount_field, currency_field, phone_field,
           text_fields: tuple = (), exact: Callable[[int], Any] | None = None,
           shortcut: Callable[[str], Any] | None = None) -> ModelSelect:
    """Apply the filters every money list shares (webapp.web.money_forms._ListFilters, parsed):
    the date window on `time_field`, exact / min / max amount (`exact` overrides what "exact"
    means), the currency the amounts are read in, and the free text over `text_fields` + phone
    (`shortcut(text)`: an exact condition tried first, e.g. the reference; None when the text is not one)."""
    start, end = filters.window()
    if start:
        query = query.where(time_field >= start)
    if end:
        query = query.where(time_field < end)
    amounts = filters.amounts
    if "exact" in amounts:
        query = query.where(exact(amounts["exact"]) if exact else amount_field == amounts["exact"])
    if "min" in amounts:
        query = query.where(amount_field >= amounts["min"])
    if "max" in amounts:
        query = query.where(amount_field <= amounts["max"])
    if amounts or (filters.currency.data or "").strip():
        query = query.where(currency_field == filters.currency_code)
    if filters.text:
        # An exact reference, phone or transaction id is looked up first (a unique or plain index);
        # only when it finds nothing does the text search run.
        exact = shortcut(filters.text) if shortcut else None
        if exact is not None and query.where(exact).exists():
            return query.where(exact)
        query = query.where(text_condition(filters.text, *text_fields, phone_field=phone_field))
    return query
