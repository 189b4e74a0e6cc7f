"""The portal source: read a provider portal's payments table into the ledger.

`run_pass(source_id)` (job "portal_pass") is one pass, driven only by the source's
config (README "Portal sources"). Each row becomes a `ledger.RequestObservation`
(idempotent: reading a row again changes nothing).

Incremental reading. The portal lists newest first. Source.cursor keeps:
- `newest`: the time (and ids at that time) of the newest row of the last pass;
- `tracked`: rows still pending, and rows we could not read, with their times;
- `segments`: backlog still to read (the first pass, or a gap when more than
  `max_pages` of new rows arrived), each a next-page URL and the time it reaches down to;
- `cookies`: the portal session; `backoff`: when to try again after 429/5xx.
A pass reads from page 1 and stops after the first page that reaches rows older than
(or equal to) `newest` once every tracked row has been seen again or lies above that
page — so an unchanged portal costs one page. Rows only move down as new ones arrive,
so a page URL kept in a segment can repeat rows but never skip one. What page budget is
left after the top goes to the oldest segment. Pending rows are followed for
`list.follow_pending_hours` (default 24), then left to the ledger's own expiry.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from bs4 import BeautifulSoup

from jobs import job
from jobs.portal_browser import LoginRefused, PortalBrowser, PortalError, Throttled
from jobs.portal_table import ConfigProblem, PortalConfig, Unparseable, cells, find_columns, header_cells, parse_row
from webapp.config import settings
from webapp.domain import ledger, sources
from webapp.storage import db
from webapp.storage.models import Source, utcnow

MAX_BACKOFF_S = 3600


@job
def run_pass(source_id: int) -> dict[str, Any]:
    """One pass of portal source `source_id`; returns what it saw (printed by `sources run`)."""
    return scrape(source_id)


def scrape(source_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """One pass (see the module docstring); never raises for the portal's faults, records them."""
    now = now or utcnow()
    source = Source.get_by_id(source_id)
    cursor = dict(source.cursor or {})
    summary: dict[str, Any] = {"source": source.name, "pages": 0, "rows": 0, "created": 0, "paid": 0,
                               "ended": 0, "unchanged": 0, "unparseable": 0, "logins": 0}
    backoff = cursor.get("backoff") or {}
    if backoff.get("until") and now < datetime.fromisoformat(backoff["until"]):
        return {**summary, "skipped": f"backing off until {backoff['until']}"}
    try:
        cfg = PortalConfig.from_source(source.config or {})
    except ConfigProblem as exc:
        sources.raise_alarm(source_id, "config_invalid", f"config: {exc}")
        sources.record_pass(source_id, ok=False, error=f"config: {exc}", now=now)
        return {**summary, "error": f"config: {exc}"}
    sources.clear_alarm(source_id, "config_invalid")
    browser = PortalBrowser(cfg, cursor.get("cookies"))
    reader = PassReader(source, cfg, browser, cursor, now)
    try:
        reader.run()
    except Throttled as exc:
        delay = exc.retry_after if exc.retry_after is not None else \
            min(MAX_BACKOFF_S, 2 * backoff["delay"] if backoff.get("delay") else cfg.backoff_s)
        until = now + timedelta(seconds=delay)
        cursor["backoff"] = {"until": until.isoformat(), "delay": delay, "error": str(exc)}
        return _failed(source_id, cursor, browser, reader, summary, str(exc), now, backoff_until=until)
    except LoginRefused as exc:
        sources.raise_alarm(source_id, "login_refused", f"login refused: {exc}")
        return _failed(source_id, cursor, browser, reader, summary, f"login refused: {exc}", now)
    except ColumnsMissing as exc:
        for key in set(cfg.columns) - set(exc.missing):
            sources.clear_alarm(source_id, f"column_missing:{key}")
        for key, header in exc.missing.items():
            sources.raise_alarm(source_id, f"column_missing:{key}",
                                 f"column {header!r} ({key}) is missing from the payments table")
        return _failed(source_id, cursor, browser, reader, summary, str(exc), now)
    except PortalError as exc:
        return _failed(source_id, cursor, browser, reader, summary, str(exc), now)
    finally:
        cookies = browser.cookies()
        browser.close()
    sources.clear_alarm(source_id, "login_refused")
    for key in cfg.columns:
        sources.clear_alarm(source_id, f"column_missing:{key}")
    bad = {k: t["note"] for k, t in reader.tracked.items() if t["why"] == "unparseable"}
    if bad:
        examples = "; ".join(list(bad.values())[:3])
        sources.raise_alarm(source_id, "rows_unparseable", f"{len(bad)} row(s) cannot be read, e.g. {examples}")
    else:
        sources.clear_alarm(source_id, "rows_unparseable")
    cursor.update(reader.new_cursor(), cookies=cookies, backoff=None)
    _save_cursor(source_id, cursor)
    summary.update(reader.counts, fetches=browser.fetches, logins=browser.logins,
                   tracked_pending=sum(1 for t in reader.tracked.values() if t["why"] == "pending"),
                   backlog_segments=len(reader.segments))
    sources.record_pass(source_id, ok=True, now=now, last_contact_at=now, backoff_until=None,
                         progress={k: summary[k] for k in ("pages", "rows", "created", "paid", "ended")})
    return summary


class ColumnsMissing(PortalError):
    def __init__(self, missing: dict[str, str]):
        super().__init__("missing column(s): " + ", ".join(f"{h!r} ({k})" for k, h in missing.items()))
        self.missing = missing


def _failed(source_id: int, cursor: dict, browser: PortalBrowser, reader: "PassReader", summary: dict,
            error: str, now: datetime, backoff_until: datetime | None = None) -> dict[str, Any]:
    """A pass that stopped: rows already read are in the ledger; the cursor keeps only the session
    (and the back-off), so the next pass reads those pages again (idempotent)."""
    cursor["cookies"] = browser.cookies()
    _save_cursor(source_id, cursor)
    if browser.pages_ok:
        sources.clear_alarm(source_id, "login_refused")
    # Contact is a page read logged in: a portal answering only errors (5xx, 429, a refused
    # login) is not heard from, and after 3 intervals of that the "silent" alarm says so.
    sources.record_pass(source_id, ok=False, error=error, now=now, backoff_until=backoff_until,
                         **({"last_contact_at": now} if browser.pages_ok else {}))
    return {**summary, **reader.counts, "fetches": browser.fetches, "logins": browser.logins,
            "error": error, **({"backoff_until": backoff_until.isoformat()} if backoff_until else {})}


def _save_cursor(source_id: int, cursor: dict[str, Any]) -> None:
    with db.transaction():
        Source.update(cursor=cursor).where(Source.id == source_id).execute()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class PassReader:
    """Reads pages for one pass and hands their rows to the ledger; see the module docstring."""

    def __init__(self, source: Source, cfg: PortalConfig, browser: PortalBrowser, cursor: dict, now: datetime):
        self.source, self.cfg, self.browser, self.now = source, cfg, browser, now
        self.region = settings().phone_region
        newest = cursor.get("newest") or {}
        self.old_newest = (_at(newest.get("at")), set(newest.get("ids", []))) if newest else None
        horizon = now - timedelta(hours=cfg.follow_pending_hours)
        tracked = cursor.get("tracked") or {}
        self.tracked = {k: t for k, t in tracked.items() if _at(t["at"]) is None or _at(t["at"]) >= horizon}
        self.counts = {"pages": 0, "rows": 0, "created": 0, "paid": 0, "ended": 0, "unchanged": 0, "ignored": 0,
                       "unparseable": 0, "stopped_following": len(tracked) - len(self.tracked)}
        self.segments = [dict(s) for s in cursor.get("segments") or []]
        self.newest: tuple[datetime, set[str]] | None = None
        self.seen: set[str] = set()
        self.lowest: datetime | None = None  # oldest row time read from the top
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            self.error = exc
            raise

    def _run(self) -> None:
        budget = self.cfg.max_pages
        url: str | None = self.browser.url(self.cfg.list_url)
        skip_known = not self.segments
        connected = False
        while url and budget:
            rows, url = self._read(url, skip_known=skip_known)
            budget -= 1
            if self.newest is None and rows:
                top = max(at for _, at in rows)
                self.newest = (top, {key for key, at in rows if at == top})
            if self._reached_known(rows) and not self._waiting(rows):
                connected = True
                break
        if not connected and url and self.old_newest:
            # More than a pass of new rows: the rest down to the old newest row is a gap.
            at, ids = self.old_newest
            self.segments.insert(0, {"url": url, "until": _iso(at), "ids": sorted(ids)})
        elif not connected and url:
            self.segments.insert(0, {"url": url, "until": None, "ids": []})
        if connected or not url:
            self._forget_vanished()
        while self.segments and budget:
            segment = self.segments[0]
            url, done = segment["url"], False
            while url and budget and not done:
                rows, url = self._read(url, skip_known=False)
                budget -= 1
                until = _at(segment["until"])
                done = until is not None and any(at < until or (at == until and key in segment["ids"])
                                                 for key, at in rows)
            if done or not url:
                self.segments.pop(0)
            else:
                segment["url"] = url

    def _reached_known(self, rows: list[tuple[str, datetime]]) -> bool:
        if self.old_newest is None:
            return False
        at, ids = self.old_newest
        return any(t < at or (t == at and key in ids) for key, t in rows)

    def _waiting(self, rows: list[tuple[str, datetime]]) -> bool:
        """Tracked rows not seen yet that sit at or below this page: keep paging."""
        if not rows:
            return False
        oldest = min(at for _, at in rows)
        return any(key not in self.seen and (_at(t["at"]) is None or _at(t["at"]) <= oldest)
                   for key, t in self.tracked.items())

    def _forget_vanished(self) -> None:
        """Tracked rows whose place was read from the top without seeing them left the portal."""
        if self.lowest is None:
            return
        for key in [k for k, t in self.tracked.items()
                    if k not in self.seen and _at(t["at"]) and _at(t["at"]) > self.lowest]:
            self.tracked.pop(key)

    def _read(self, url: str, *, skip_known: bool) -> tuple[list[tuple[str, datetime]], str | None]:
        """Read one page into the ledger: ([(row key, time)], next page URL or None)."""
        page = self.browser.page(url)
        self.counts["pages"] += 1
        found = page.select(self.cfg.rows)
        headers = header_cells(page, found, self.cfg)
        if not found:
            return [], self._next(page)
        if headers is None:
            raise PortalError(f"{url}: rows but no header row (set list.header_selector)")
        positions, missing = find_columns(headers, self.cfg)
        if missing:
            raise ColumnsMissing({key: self.cfg.columns[key][0] for key in missing})
        read: list[tuple[str, datetime]] = []
        last_at = self.lowest or self.now
        for row in found:
            values = cells(row)
            try:
                obs = parse_row(values, positions, headers, self.cfg, self.source.name, self.region)
            except Unparseable as exc:
                key = values[positions["external_id"]].strip() if len(values) > positions["external_id"] else ""
                key = key or "row:" + hashlib.sha1("|".join(values).encode()).hexdigest()[:12]
                self.tracked[key] = {"at": _iso(last_at), "why": "unparseable", "note": str(exc)}
                self.seen.add(key)
                self.counts["unparseable"] += 1
                read.append((key, last_at))
                continue
            key, last_at = obs.external_id, obs.created_at
            read.append((key, last_at))
            self.seen.add(key)
            self.lowest = min(self.lowest, last_at) if self.lowest else last_at
            self.counts["rows"] += 1
            if skip_known and key not in self.tracked and self._reached_known([(key, last_at)]):
                self.counts["unchanged"] += 1
                continue
            result = ledger.observe_request(obs, now=self.now)
            self.counts[result.change] += 1
            if obs.status == "pending":
                self.tracked[key] = {"at": _iso(last_at), "why": "pending"}
            else:
                self.tracked.pop(key, None)
        return read, self._next(page)

    def _next(self, page: BeautifulSoup) -> str | None:
        link = page.select_one(self.cfg.next) if self.cfg.next else None
        href = link.get("href") if link is not None else None
        return self.browser.link(href) if href and not href.startswith(("#", "javascript:")) else None

    def new_cursor(self) -> dict[str, Any]:
        newest = self.newest or self.old_newest
        return {
            "newest": {"at": _iso(newest[0]), "ids": sorted(newest[1])} if newest else None,
            "tracked": self.tracked,
            "segments": self.segments,
        }
