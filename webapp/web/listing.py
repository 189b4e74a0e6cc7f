"""Keyset pagination for list pages: newest first by id, `?before=<id>` for the next page.

Offset pagination rereads every skipped row and shifts while rows arrive; a keyset
reads one page through the primary key whatever the table's size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request
from peewee import ModelSelect

from webapp.domain.input_bounds import MAX_ID

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
