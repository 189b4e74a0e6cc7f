"""The list pages' one way to filter, sort, page and export: shared filters (narrow), keyset
pages over a whitelisted sort column, and streamed CSV.

A sorted list (`Sortable`) is ordered by (column, id) — newest first by its time column unless
`?sort=<key>&order=asc|desc` says otherwise — and pages with `?after=<cursor>`, the last row's
(column value, id). Lists without a sort (agents) page newest first by id with `?before=<id>`.
An unknown sort key or a forged cursor reads the default first page, never an error page.

Offset pagination rereads every skipped row and shifts while rows arrive; a keyset reads one
page through an index whatever the table's size: the cursor condition is written as
`column <= v AND (column < v OR id < last_id)` so a one-column index on the sort column serves it.
"""
from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import operator
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Sequence

from flask import Response, request, stream_with_context
from peewee import DateTimeField, IntegerField, ModelSelect

from webapp.config import settings
from webapp.domain import phones
from webapp.domain.input_bounds import MAX_ID
from webapp.storage import search

_NON_DIGIT = re.compile(r"\D")
DEFAULT_SIZE = 50
MAX_SIZE = 200
ASC, DESC = "asc", "desc"
_MAX_CURSOR = 1000  # characters; a cursor holds one column value and an id
EXPORT_BATCH = 500  # rows read per query while streaming a CSV: memory stays flat however long the list


@dataclass(frozen=True)
class SortColumn:
    """A column a list may be sorted by: `key` in the URL, the model `field`, and the order a
    first click on its header gives (times and amounts newest / largest first, text A→Z)."""

    key: str
    field: Any
    first: str = DESC


class Sortable:
    """The whitelist of one list's sortable columns; the first is the default, newest first."""

    def __init__(self, model, *columns: SortColumn):
        self.model = model
        self.columns = {column.key: column for column in columns}
        self.default = columns[0]

    def read(self, args=None) -> Sort:
        """The sort asked for by `?sort=&order=` (the request's by default); unknown → the default."""
        args = request.args if args is None else args
        column = self.columns.get(args.get("sort", ""))
        explicit = column is not None
        column = column or self.default
        order = args.get("order", "")
        if order not in (ASC, DESC):
            order = column.first
        return Sort(self, column, order == DESC, explicit)


@dataclass(frozen=True)
class Sort:
    """One list's current order: a whitelisted column and a direction, ties broken by id."""

    sortable: Sortable
    column: SortColumn
    descending: bool
    explicit: bool = False  # asked for in the URL (kept in the filter form), not the default

    @property
    def key(self) -> str:
        return self.column.key

    @property
    def order(self) -> str:
        return DESC if self.descending else ASC

    @property
    def newest_first(self) -> bool:
        return self.column is self.sortable.default and self.descending

    def args(self) -> dict[str, str]:
        """The query-string arguments that keep this order (none for the default)."""
        return {"sort": self.key, "order": self.order} if self.explicit else {}

    def aria(self, key: str) -> str:
        """aria-sort of the header of column `key`."""
        if key != self.key:
            return "none"
        return "descending" if self.descending else "ascending"

    def link_args(self, key: str) -> dict[str, str]:
        """The sort a click on the header of `key` asks for: the other direction on the
        current column, the column's first direction on another."""
        if key == self.key:
            return {"sort": key, "order": ASC if self.descending else DESC}
        return {"sort": key, "order": self.sortable.columns[key].first}

    def ordering(self) -> tuple:
        field, row_id = self.column.field, self.sortable.model.id
        if field is row_id:
            return (row_id.desc() if self.descending else row_id.asc(),)
        # Empty values last in both directions: what is there comes first.
        nulls = "LAST" if field.null else None
        by_value = field.desc(nulls=nulls) if self.descending else field.asc(nulls=nulls)
        return by_value, (row_id.desc() if self.descending else row_id.asc())

    # ------------------------------------------------------------ cursor

    def cursor(self, row) -> str:
        """The opaque `after=` value that continues after `row`."""
        value = getattr(row, self.column.field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        text = json.dumps([self.key, self.order, value, row.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def read_cursor(self, token: str) -> tuple[Any, int] | None:
        """(value, id) of a cursor made by this sort, else None (a forged or stale one)."""
        if not token or len(token) > _MAX_CURSOR:
            return None
        try:
            key, order, value, row_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            value = self._value(value)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
            return None
        if key != self.key or order != self.order or type(row_id) is not int or not 0 < row_id <= MAX_ID:
            return None
        return value, row_id

    def _value(self, value):
        field = self.column.field
        if value is None:
            if not field.null:
                raise ValueError("no value")
            return None
        if isinstance(field, DateTimeField):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError("naive time")
            return moment
        if isinstance(field, IntegerField):  # the id, amounts, counts
            if type(value) is not int:
                raise ValueError("not a number")
            return value
        if not isinstance(value, str):
            raise ValueError("not text")
        return value

    def after(self, value, row_id: int):
        """The rows that come after (value, row_id) in this order."""
        field, id_field = self.column.field, self.sortable.model.id
        beyond = operator.lt if self.descending else operator.gt
        if field is id_field:
            return beyond(id_field, row_id)
        if value is None:  # among the empty values, which come last
            return field.is_null() & beyond(id_field, row_id)
        reached = operator.le if self.descending else operator.ge
        condition = reached(field, value) & (beyond(field, value) | beyond(id_field, row_id))
        return condition | field.is_null() if field.null else condition


@dataclass
class Page:
    items: list[Any]
    next_args: dict[str, Any] | None  # the query-string arguments of the next page
    size: int
    sort: Sort | None = None

    @property
    def has_next(self) -> bool:
        return self.next_args is not None

    @property
    def newest_first(self) -> bool:
        return self.sort is None or self.sort.newest_first


def _int_arg(name: str) -> int | None:
    """A positive id-sized number from the query string; None when absent or not one (a forged
    `before` reads the first page rather than failing)."""
    value = request.args.get(name, "")
    if not (0 < len(value) <= 19 and value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def keyset_page(query: ModelSelect, model, *, size: int | None = None, sort: Sort | None = None) -> Page:
    """One page of `query` (already filtered): in `sort`'s order after `?after=`, or without a
    sort newest first by id after `?before=`."""
    size = min(size or _int_arg("size") or DEFAULT_SIZE, MAX_SIZE)
    if sort is None:
        before = _int_arg("before")
        if before is not None:
            query = query.where(model.id < before)
        rows = list(query.order_by(model.id.desc()).limit(size + 1))
        more = len(rows) > size
        rows = rows[:size]
        return Page(items=rows, next_args={"before": rows[-1].id} if more and rows else None, size=size)
    cursor = sort.read_cursor(request.args.get("after", ""))
    if cursor is not None:
        query = query.where(sort.after(*cursor))
    rows = list(query.order_by(*sort.ordering()).limit(size + 1))
    more = len(rows) > size
    rows = rows[:size]
    return Page(items=rows, next_args={"after": sort.cursor(rows[-1])} if more and rows else None,
                size=size, sort=sort)


def in_order(query: ModelSelect, sort: Sort, batch: int | None = None) -> Iterator[Any]:
    """Every row of `query` in `sort`'s order, read `batch` rows per query by keyset."""
    batch = batch or EXPORT_BATCH
    page = query.order_by(*sort.ordering())
    while True:
        rows = list(page.limit(batch))
        yield from rows
        if len(rows) < batch:
            return
        page = query.where(sort.after(getattr(rows[-1], sort.column.field.name), rows[-1].id)) \
            .order_by(*sort.ordering())


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")  # "+256772123456", "-5.00": read as numbers, never run


def csv_cell(value) -> str:
    """A value as CSV text a spreadsheet will not run: text starting like a formula (= + - @, tab,
    carriage return) gets a leading quote, unless it is a plain number such as an E.164 phone."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_lines(header: Sequence[str], rows: Iterable[Any], cells: Callable[[Any], Sequence[Any]],
              flush_every: int | None = None) -> Iterator[str]:
    """The CSV text of `rows` (a header, then `cells(row)` per row), in pieces of `flush_every` rows."""
    flush_every = flush_every or EXPORT_BATCH
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow([csv_cell(value) for value in cells(row)])
        if count % flush_every == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(name: str, lines: Iterator[str]) -> Response:
    """A streamed CSV download named paywatch-<name>-<local date>.csv."""
    stamp = datetime.now(settings().zone).strftime("%Y-%m-%d")
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="paywatch-{name}-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def refused_export(problems: Iterable[str]) -> Response:
    """400 for an export whose filters cannot be read, saying which (plain text: it is a download)."""
    return Response("; ".join(problems) + "\n", 400, mimetype="text/plain")


def form_problems(form) -> list[str]:
    return [f"{field.label.text}: {' '.join(field.errors)}" for field in form if field.errors]


def local_iso(moment: datetime | None) -> str:
    """A stored UTC time as ISO-8601 in the configured zone ("" when none)."""
    return moment.astimezone(settings().zone).isoformat() if moment else ""


def args_without(*names: str) -> dict[str, str]:
    """The current query string minus `names` (to build the next-page link keeping filters)."""
    return {k: v for k, v in request.args.items() if k not in names and v != ""}


def filtered_page(query: ModelSelect | None, model, sort: Sort | None = None) -> tuple[Page | None, int]:
    """(page, HTTP status) for a list whose filters may not parse (`query` None).

    A bad filter is 400 for a full page, but 200 for an HTMX poll: htmx only swaps in
    2xx answers, and the fragment shows the filter error.
    """
    from webapp.web.htmx import is_partial_request

    if query is None:
        return None, 200 if is_partial_request() else 400
    return keyset_page(query, model, sort=sort), 200


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
