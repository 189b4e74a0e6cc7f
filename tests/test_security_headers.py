"""Every response carries the security headers; no template needs inline script or style."""
import json
import re

import pytest

from tests.test_access import _url, declared_routes
from webapp.config import ROOT
from webapp.storage.models import Role
from webapp.web.errors import CONTENT_SECURITY_POLICY
from webapp.web.ops import DASHBOARD_POLICY


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


def assert_secure_headers(response, where: str, policy: str = CONTENT_SECURITY_POLICY) -> None:
    headers = response.headers
    assert headers.get("Content-Security-Policy") == policy, where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") == "same-origin", where
    assert headers.get("X-Frame-Options") == "DENY", where
    assert "Strict-Transport-Security" not in headers, where  # this app runs without secure cookies


def test_the_policy_allows_no_inline_script_eval_or_framing():
    policy = directives(CONTENT_SECURITY_POLICY)
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]


@pytest.mark.parametrize("role", [None, Role.VIEWER, Role.STAFF, Role.ADMIN])
def test_every_page_carries_the_headers_for_every_role(app, client, login_as, role):
    if role:
        login_as(role)
    seen = 0
    for rule, level in declared_routes(app):
        if "GET" not in rule.methods or rule.endpoint in ("auth.logout",):
            continue
        url = _url(rule)
        if rule.endpoint == "static":
            url = "/static/app.js"
        response = client.get(url)
        where = f"GET {url} as {role}: {response.status_code}"
        policy = CONTENT_SECURITY_POLICY
        if rule.endpoint.startswith("rq_dashboard."):
            policy = response.headers.get("Content-Security-Policy", "")
            nonce = re.search(r"'nonce-([^']+)'", policy)
            assert nonce and policy == DASHBOARD_POLICY.format(nonce=nonce.group(1)), where
        assert_secure_headers(response, where, policy)
        response.close()  # a static file is streamed from an open file
        seen += 1
    assert seen > 50


def test_errors_json_and_refused_posts_carry_them_too(client, make_user):
    assert_secure_headers(client.get("/no/such/page"), "404")
    assert_secure_headers(client.get("/api/v1/requests"), "API 401")
    assert_secure_headers(client.post("/login", data={}), "CSRF 400")
    assert_secure_headers(client.get("/healthz"), "healthz")


def test_hsts_is_sent_when_cookies_are_secure(settings, app):
    from webapp import create_app

    secure = create_app(settings.with_overrides(secure_cookies=True))
    response = secure.test_client().get("/login", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


INLINE = {
    "inline <script> (load a static/*.js file)": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "on…= handler (wire it in static/app.js)": re.compile(r"\son[a-z]+\s*=", re.I),
    "style attribute or <style> (use static/app.css)": re.compile(r"\sstyle\s*=|<style", re.I),
    "hx-on (needs eval)": re.compile(r"\bhx-on\b|\bhx-on[:-]", re.I),
    "js: values (need eval)": re.compile(r"""hx-vals=['"]\s*(js|javascript):|hx-vars=""", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_no_template_needs_inline_script_style_or_eval():
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = re.sub(r"{#.*?#}", lambda m: "\n" * m.group(0).count("\n"), path.read_text(), flags=re.S)
        for what, pattern in INLINE.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}: {match.group(0).strip()}")
    assert found == []


def test_htmx_is_configured_to_need_no_eval_and_inject_no_style():
    base = (ROOT / "templates" / "base.html").read_text()
    config = re.search(r"""<meta name="htmx-config" content='([^']+)'>""", base)
    assert json.loads(config.group(1)) == {"includeIndicatorStyles": False, "allowScriptTags": False,
                                           "allowEval": False}
