"""One logged-in MechanicalSoup session with a provider portal.

`PortalBrowser(cfg, cookies)` starts from the cookies kept from the last pass, so a
pass normally costs no login at all. `page(url)` opens a page; when the portal sends
us to its login page, or the page lacks `logged_in_selector`, it logs in once (the
login form's hidden CSRF fields travel along with `submit_selected()`) and opens the
page again. Errors are typed: `Throttled` (429 / 5xx / unreachable: back off),
`LoginRefused` (alarm), `PortalError` (anything else about the portal's answer).
"""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import mechanicalsoup
import requests
from bs4 import BeautifulSoup

from jobs.portal_table import PortalConfig
from webapp.config import ConfigError, secret

USER_AGENT = "Paywatch portal reader (+https://github.com/paywatch)"


class PortalError(Exception):
    """The portal answered something we cannot use; the message says what and where."""


class Throttled(PortalError):
    """429, a 5xx or no answer at all: wait `retry_after` seconds (None: our own back-off)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class LoginRefused(PortalError):
    """The portal did not accept our credentials (or they are not configured)."""


def retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class PortalBrowser:
    def __init__(self, cfg: PortalConfig, cookies: list[dict[str, Any]] | None = None):
        self.cfg = cfg
        self.browser = mechanicalsoup.StatefulBrowser(user_agent=USER_AGENT, raise_on_404=False)
        for c in cookies or []:
            self.browser.session.cookies.set_cookie(requests.cookies.create_cookie(
                c["name"], c["value"], domain=c.get("domain", ""), path=c.get("path", "/"),
                secure=bool(c.get("secure")), expires=c.get("expires")))
        self.logins = 0
        self.fetches = 0  # every HTTP request, login included
        self.pages_ok = 0  # pages returned logged in

    def url(self, path: str) -> str:
        """`path` (from the config) against base_url."""
        return urljoin(self.cfg.base_url, path)

    def link(self, href: str) -> str:
        """A link on the current page, made absolute against that page's URL."""
        return urljoin(self.browser.url or self.cfg.base_url, href)

    def cookies(self) -> list[dict[str, Any]]:
        """The session cookies, to keep until the next pass (a session, never the password)."""
        return [{"name": c.name, "value": c.value, "domain": c.domain, "path": c.path,
                 "secure": c.secure, "expires": c.expires} for c in self.browser.session.cookies]

    def close(self) -> None:
        self.browser.close()

    def _open(self, url: str) -> requests.Response:
        self.fetches += 1
        try:
            response = self.browser.open(url, timeout=self.cfg.timeout_s)
        except requests.RequestException as exc:
            raise Throttled(f"{url}: no answer ({type(exc).__name__})") from None
        self._check(response, url)
        return response

    @staticmethod
    def _check(response: requests.Response, url: str) -> None:
        code = response.status_code
        if code == 429 or code >= 500:
            raise Throttled(f"{url}: HTTP {code}", retry_after(response))
        if code >= 400:
            raise PortalError(f"{url}: HTTP {code}")

    def _logged_out(self, page: BeautifulSoup | None, final_url: str) -> bool:
        if page is None:
            return True
        on_login = urlsplit(final_url).path == urlsplit(self.url(self.cfg.login_url)).path
        return on_login or page.select_one(self.cfg.login_form) is not None or \
            page.select_one(self.cfg.logged_in_selector) is None

    def page(self, url: str) -> BeautifulSoup:
        """The page at `url`, logged in (at most one login per pass)."""
        response = self._open(url)
        if not self._logged_out(self.browser.page, response.url):
            self.pages_ok += 1
            return self.browser.page
        if self.logins:
            raise PortalError(f"{url}: the portal logged us out again right after a login")
        response = self.log_in()
        if response.url != url:  # the portal usually lands us back on `url` itself
            response = self._open(url)
        if self._logged_out(self.browser.page, response.url):
            raise LoginRefused(f"still not logged in after signing in at {self.url(self.cfg.login_url)}")
        self.pages_ok += 1
        return self.browser.page

    def log_in(self) -> requests.Response:
        """Fill and submit the login form (CSRF fields included); LoginRefused when not accepted."""
        cfg = self.cfg
        try:
            username, password = secret(cfg.username_env), secret(cfg.password_env)
        except ConfigError as exc:
            raise LoginRefused(str(exc)) from None
        page = self.browser.page
        if page is None or page.select_one(cfg.login_form) is None:
            self._open(self.url(cfg.login_url))
            if self.browser.page is None or self.browser.page.select_one(cfg.login_form) is None:
                raise PortalError(f"no login form {cfg.login_form!r} at {self.url(cfg.login_url)}")
        form = self.browser.select_form(cfg.login_form)
        try:
            form.set(cfg.username_field, username)
            form.set(cfg.password_field, password)
        except mechanicalsoup.LinkNotFoundError:
            raise PortalError(f"the login form has no field {cfg.username_field!r} or {cfg.password_field!r}") from None
        self.logins += 1
        self.fetches += 1
        try:
            response = self.browser.submit_selected(timeout=cfg.timeout_s)
        except requests.RequestException as exc:
            raise Throttled(f"login: no answer ({type(exc).__name__})") from None
        if response.status_code in (400, 401, 403):
            raise LoginRefused(f"the portal refused the login form (HTTP {response.status_code})")
        self._check(response, self.url(cfg.login_url))
        if self._logged_out(self.browser.page, response.url):
            raise LoginRefused(f"login refused at {self.url(cfg.login_url)}: still on the login form after signing in")
        return response
