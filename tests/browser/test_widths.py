"""Every page at 1400, 1024 and 390 px in headless Chromium: nothing wider than the window, no button cut off.

The pages are read from the app's url_map: every GET page without arguments, and one of each page
that takes an id (the argument is filled from the showcase data by its name; a page whose argument
has no value here fails the test, so a new page is never silently left out). What counts as a page:
an HTML answer with a <!doctype> (fragments, CSV, JSON, the API and rq-dashboard are not pages).

A page fails, with its folded parts (<details>: filters, forms) opened, when the document scrolls
sideways (scrollWidth > clientWidth), or when a visible button, input, select, textarea or
a.button/[role=button] reaches past the window's edges, is cut by an ancestor that hides or scrolls
its overflow, or cuts its own label. Seen as an admin (the most buttons), the public pages logged out. A table may scroll inside its own
wrapper (a wide list at 390 px) as long as that wrapper fits the window and holds no control.
"""
from __future__ import annotations

import re

import pytest

from sandbox import showcase
from tests.browser.conftest import log_in, wait_until
from webapp.storage.models import utcnow

pytestmark = [pytest.mark.browser, pytest.mark.one_backend]  # CSS and markup: the database plays no part

WIDTHS = (1400, 1024, 390)
NOT_PAGES = re.compile(r"^/(api/v1|ops|static|healthz|metrics)\b|\.(csv|json)$")
PUBLIC = ("/login", "/api/docs")  # seen logged out (the payment page too)

# What the page finds wrong, in one script: [{what, where, why}], empty when the page fits.
PROBLEMS = r"""
// Folded parts (filters, "add a …" forms, settings) are measured open; the account menu stays shut.
document.querySelectorAll('main details:not(.dropdown)').forEach((d) => { d.open = true; });
const width = document.documentElement.clientWidth, problems = [];
const label = (e) => e.textContent.replace(/\s+/g, ' ').trim().slice(0, 30);
const name = (e, text) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
  (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '') +
  (e.name ? '[name=' + e.name + ']' : '') + (text && label(e) ? ' "' + label(e) + '"' : '');
const control = (e) => name(e, true);
const visible = (e) => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; };
if (document.documentElement.scrollWidth > width) {
  const scrolled = (e) => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
    if (getComputedStyle(a).overflowX !== 'visible') return true; return false; };
  const wide = [...document.body.querySelectorAll('*')].filter(e => visible(e) && !scrolled(e) &&
    e.getBoundingClientRect().right > width + 1 && !(e.parentElement && e.parentElement.getBoundingClientRect().right > width + 1));
  problems.push({what: 'page', where: wide.slice(0, 5).map(name).join(' | '),
                 why: `scrolls sideways: ${document.documentElement.scrollWidth} px > ${width} px`});
}
for (const e of document.querySelectorAll('button, input:not([type=hidden]), select, textarea, a.button, [role=button]')) {
  if (!visible(e)) continue;
  const r = e.getBoundingClientRect();
  if (r.left < -1 || r.right > width + 1) {
    problems.push({what: control(e), where: '', why: `reaches ${Math.round(r.left)}..${Math.round(r.right)} px of ${width}`});
    continue;
  }
  if (e.tagName === 'BUTTON' && e.scrollWidth > e.clientWidth + 1) {
    problems.push({what: control(e), where: '', why: `label cut: ${e.scrollWidth} px in ${e.clientWidth} px`});
    continue;
  }
  for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (s.overflowX === 'visible') continue;
    const box = a.getBoundingClientRect();
    if (r.left < box.left - 1 || r.right > box.right + 1 || a.scrollWidth > a.clientWidth + 1) {
      problems.push({what: control(e), where: name(a), why: `inside a box that ${s.overflowX === 'hidden' || s.overflowX === 'clip' ? 'hides' : 'scrolls'} it sideways`});
      break;
    }
  }
}
return problems;
"""


def pages(app, arguments: dict[str, str]) -> list[str]:
    """Every GET page of the url_map, arguments filled in by name; fails on an argument it cannot fill."""
    found, missing = [], []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or NOT_PAGES.search(rule.rule):
            continue
        unknown = rule.arguments - arguments.keys()
        if unknown:
            missing.append(f"{rule.rule} ({', '.join(sorted(unknown))})")
            continue
        found.append(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: arguments[m.group(1)], rule.rule))
    assert not missing, f"pages this test has no argument for (add one to `arguments`): {missing}"
    return sorted(set(found))


def is_page(client, path: str) -> bool:
    response = client.get(path)
    return response.status_code == 200 and response.mimetype == "text/html" and response.get_data(
        as_text=True).lstrip().lower().startswith("<!doctype")


def problems_at(browser, base: str, path: str) -> list[str]:
    browser.get(base + path)
    found = browser.execute_script(PROBLEMS)
    return [f"{path}: {p['what']} {p['why']}" + (f" (in {p['where']})" if p["where"] else "") for p in found]


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_overflows_the_window_or_cuts_a_button(width, app, browser, live_server, make_user, domain, auth,
                                                       client):
    admin = make_user("admin", name="Administrator with a rather long display name")
    made = domain(showcase.seed, utcnow(), admin_id=admin.id)
    request, agent = made.requests[1], made.agent_id
    arguments = {
        "reference": request.reference, "payment_id": str(made.review_payment_id), "agent_id": str(agent),
        "rule_id": str(made.rule_id), "kind": "reminder",
        "endpoint_id": str(made.endpoint_id), "code": made.payer_code, "token": request.pay_token,
        "pool": made.voucher_pool, "field": "phone",
    }
    auth.login(admin.email)
    staff_pages = [path for path in pages(app, arguments) if path not in PUBLIC and is_page(client, path)]
    assert {"/", "/sources/", "/review/", f"/requests/{request.reference}", f"/agents/{agent}"} <= set(staff_pages)

    browser.set_window_size(width, 900)
    inner = browser.execute_script("return window.innerWidth")
    browser.set_window_size(2 * width - inner, 900)  # the window's frame aside: the page gets `width` px
    assert browser.execute_script("return window.innerWidth") == width

    base = live_server.url
    found = []
    for path in (*PUBLIC, f"/pay/{request.pay_token}"):
        found += problems_at(browser, base, path)
    log_in(browser, live_server, admin)
    for path in staff_pages:
        found += problems_at(browser, base, path)
    assert not found, f"at {width} px:\n" + "\n".join(found)


def test_the_check_sees_a_page_that_overflows_and_a_cut_button(app, browser, live_server, make_user):
    """The check itself: a wide element and a button hidden by its box are both reported."""
    log_in(browser, live_server, make_user("viewer"))
    browser.set_window_size(500, 900)
    assert problems_at(browser, live_server.url, "/") == []
    browser.execute_script("""document.querySelector('main').insertAdjacentHTML('beforeend',
        '<div id="wide"></div><div id="clip"><button id="cut">Disable this source now</button></div>');
        const wide = document.getElementById('wide'); wide.style.width = '900px'; wide.style.height = '1em';
        const clip = document.getElementById('clip'); clip.style.width = '60px'; clip.style.overflow = 'hidden';""")
    found = browser.execute_script(PROBLEMS)
    assert [p["what"] for p in found][:1] == ["page"] and "div#wide" in found[0]["where"]
    assert any(p["what"].startswith("button#cut") and "hides" in p["why"] for p in found)


def test_at_390_px_the_menu_folds_and_a_table_of_buttons_becomes_labelled_blocks(app, browser, live_server,
                                                                                make_user, domain):
    from selenium.webdriver.common.by import By

    from webapp.domain import agents

    domain(agents.create_agent, "Amina Nakato", "+256772000001", "AG7", actor="test")
    log_in(browser, live_server, make_user("admin"))
    browser.set_window_size(390, 900)
    browser.get(live_server.url + "/agents/")
    sources_link = browser.find_element(By.CSS_SELECTOR, ".nav-links a[href='/sources/']")
    assert not sources_link.is_displayed()
    browser.find_element(By.CSS_SELECTOR, "label.nav-toggle-label").click()
    assert sources_link.is_displayed()
    cell = browser.find_element(By.CSS_SELECTOR, "#agents-table tr[data-code=AG7] td")
    assert cell.get_attribute("data-label") == "Code" and cell.value_of_css_property("display") == "block"
    assert browser.execute_script(
        "return getComputedStyle(arguments[0], '::before').content", cell) == '"Code"'
    sources_link.click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "source-cards"))

    browser.set_window_size(1400, 900)  # a wide window: the menu is open by itself, the table a table again
    browser.get(live_server.url + "/agents/")
    assert browser.find_element(By.CSS_SELECTOR, ".nav-links a[href='/sources/']").is_displayed()
    assert not browser.find_element(By.CSS_SELECTOR, "label.nav-toggle-label").is_displayed()
    cell = browser.find_element(By.CSS_SELECTOR, "#agents-table tr[data-code=AG7] td")
    assert cell.value_of_css_property("display") == "table-cell"
