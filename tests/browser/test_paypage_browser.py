"""The public payment page in headless Chromium at phone width (390 px): it flips to "paid" (with
the voucher code) without a reload once the ledger confirms a payment, and works with JavaScript off."""
import os
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import csp_violations, text_of, wait_until
from tests.ledger_helpers import new_request, pay
from webapp.config import ROOT
from webapp.domain import paypage, vouchers
from webapp.storage import db

pytestmark = pytest.mark.browser
# The closing note's screenshot is refreshed with PAYWATCH_SAVE_SCREENSHOTS=1; otherwise it goes to the
# test's tmp dir, so a test run leaves the tree clean.
SCREENSHOT = Path(ROOT) / "docs" / "screenshots" / "pay-390.png"
METHODS = [
    {"kind": "paybill", "label": "M-Pesa paybill", "number": "247247", "account": "{reference}",
     "instructions": "Lipa na M-Pesa → Paybill 247247, account {reference}, amount {amount}.", "qr": "{number}#{account}"},
    {"kind": "mobile_money", "label": "MTN Mobile Money", "number": "+256 772 000111", "account": "Acme Hotspot",
     "instructions": "Send {amount} to {number}; reason: {reference}.", "qr": ""},
]


def square_png(size: int = 48, rgb: tuple = (21, 128, 61)) -> bytes:
    """A plain coloured square as a PNG file (the business logo)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def phone_width(browser, height: int = 844) -> None:
    """Emulate a 390 px wide phone screen (device metrics, not only the window)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": height, "deviceScaleFactor": 2, "mobile": True})


def a_request(app, amount: int = 50000):
    with app.app_context(), db.database.connection_context():
        paypage.save_page_settings("Acme Hotspot", paypage.logo_data_uri(square_png(), "image/png"), METHODS,
                                   actor="test")
        vouchers.import_codes("day", ["WIFI-4821"], actor="test")
        return new_request(amount, voucher_pool="day")


def confirm_through_the_ledger(app, request) -> None:
    with app.app_context(), db.database.connection_context():
        assert pay(request.amount_minor, note=f"payment for {request.reference}").decision.action == "confirm"


def test_the_page_flips_to_paid_without_a_reload_at_phone_width(app, browser, live_server, tmp_path):
    request = a_request(app)
    phone_width(browser)
    browser.get(f"{live_server.url}/pay/{request.pay_token}")
    wait_until(browser, lambda d: text_of(d, "pay-state") == "Waiting for your payment")
    assert text_of(browser, "pay-amount") == "UGX 50,000" and text_of(browser, "pay-reference") == request.reference
    assert text_of(browser, "pay-business") == "Acme Hotspot"
    assert browser.execute_script("const i = document.querySelector('.pay-logo'); return i.complete && i.naturalWidth") == 48
    assert browser.find_elements(By.CSS_SELECTOR, "#pay-method-1 svg.qr")  # the paybill's QR, drawn server-side
    # Mobile first: nothing wider than the phone.
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    # The countdown runs (static/pay.js).
    first = text_of(browser, "pay-countdown")
    wait_until(browser, lambda d: text_of(d, "pay-countdown") != first, timeout=5)
    # A whole-page screenshot at phone width for the closing note.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    phone_width(browser, height)
    shot = SCREENSHOT if os.environ.get("PAYWATCH_SAVE_SCREENSHOTS") == "1" else tmp_path / SCREENSHOT.name
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    phone_width(browser)

    browser.execute_script("window.notReloaded = true")
    confirm_through_the_ledger(app, request)
    wait_until(browser, lambda d: text_of(d, "pay-state") == "Paid, thank you", timeout=15)
    assert browser.execute_script("return window.notReloaded") is True  # htmx swapped the status in place
    assert text_of(browser, "pay-voucher") == "WIFI-4821"
    assert browser.find_element(By.ID, "pay-status").get_attribute("hx-trigger") is None  # polling stopped
    assert csp_violations(browser) == []


def test_with_javascript_off_check_again_shows_the_new_status_and_a_claim_is_taken(app, browser, live_server):
    request = a_request(app, 40000)
    phone_width(browser)
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    browser.get(f"{live_server.url}/pay/{request.pay_token}")
    assert browser.find_element(By.ID, "pay-state").text == "Waiting for your payment"
    assert browser.find_elements(By.CSS_SELECTOR, "noscript")  # its meta refresh reloads the page every 15 s
    browser.find_element(By.ID, "transaction_id").send_keys("QK12AB34CD")
    browser.find_element(By.CSS_SELECTOR, "#claim-form button[type=submit]").click()
    wait_until(browser, lambda d: "We are checking your payment now" in d.find_element(By.ID, "flashes").text)
    confirm_through_the_ledger(app, request)
    browser.find_element(By.ID, "pay-check-again").click()
    wait_until(browser, lambda d: d.find_element(By.ID, "pay-state").text == "Paid, thank you")
    assert browser.find_element(By.ID, "pay-voucher").text == "WIFI-4821"
