"""Screenshots of the staff pages, for the README: a demo database, the app served, headless Chromium.

    .venv/bin/python docs/screenshots/take.py [--out docs/screenshots] [--only dashboard,review-390]
    .venv/bin/python docs/screenshots/take.py --out /tmp/shots --page /agents/@390 --page /users/@1024

Builds a fresh SQLite database in a temporary folder (every migration, an admin, and the showcase
data of sandbox/showcase.py: requests with long names, a payment in review, an unmatched one,
notifications, four sources in every state), starts a throw-away redis-server, serves the app on
a free loopback port, logs in as the admin in Debian's headless Chromium and writes one PNG per
shot: the page at its width, as tall as the page (capped at 3000 px). Nothing outside the
temporary folder and the output folder is touched. Re-run it after a UI change and commit the PNGs.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from webapp.plumbing.devstack import start_redis  # noqa: E402

PASSWORD = "screenshots only, thrown away"
MAX_HEIGHT = 3000
# (file name, width, path: a function of the showcase data)
SHOTS = [
    ("dashboard", 1400, lambda made: "/"),
    ("review", 1400, lambda made: "/review/"),
    ("requests", 1400, lambda made: "/requests/"),
    ("request", 1400, lambda made: f"/requests/{made.paid.reference}"),
    ("notifications", 1400, lambda made: "/notifications/"),
    ("sources", 1400, lambda made: "/sources/"),
    ("review-390", 390, lambda made: "/review/"),
]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNGs go")
    parser.add_argument("--only", default="", help="comma-separated shot names (default: all)")
    parser.add_argument("--page", action="append", default=[], metavar="PATH@WIDTH",
                        help="shoot this page instead (e.g. /agents/@390; repeatable); named from its path")
    return parser.parse_args()


def build_app(work: Path, redis_url: str):
    """The app on a fresh, migrated SQLite database in `work`, with an admin and the showcase data."""
    from sandbox import showcase
    from webapp import create_app
    from webapp.config import load_settings
    from webapp.domain import accounts
    from webapp.storage import db
    from webapp.storage.models import utcnow

    settings = load_settings({
        "PAYWATCH_ENV": "test", "DATABASE_URL": f"sqlite:///{work / 'paywatch.db'}", "REDIS_URL": redis_url,
        "SECRET_KEY": "screenshots-" + "x" * 24, "PAYWATCH_INSTANCE_PATH": str(work / "instance"),
        "PAYWATCH_TIMEZONE": "Africa/Kampala", "PAYWATCH_PHONE_REGION": "UG", "PAYWATCH_CURRENCY": "UGX"})
    app = create_app(settings)
    with app.app_context():
        db.upgrade()
        with db.database.connection_context():
            admin = accounts.create_user("admin@example.com", PASSWORD, "admin", "Grace (admin)", actor="screenshots")
            made = showcase.seed(utcnow() - timedelta(minutes=1), admin_id=admin.id)
    return app, made


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--no-first-run", "--disable-background-networking", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def log_in(driver, base: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base + "/login")
    driver.find_element(By.NAME, "email").send_keys("admin@example.com")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.ID, "counters"))


def shoot(driver, url: str, width: int, path: Path) -> None:
    """The page at `width` CSS px, as tall as its content (up to MAX_HEIGHT)."""
    driver.set_window_size(width, 900)
    inner = driver.execute_script("return window.innerWidth")
    driver.set_window_size(2 * width - inner, 900)
    driver.get(url)
    # Parts that load right after the page (the dashboard's charts, collections, slow payers)
    # show aria-busy placeholders until they arrive.
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15, poll_frequency=0.1).until(
        lambda d: not d.execute_script("return document.querySelector('[aria-busy=true]')"))
    driver.execute_script("return document.fonts.ready")
    height = min(MAX_HEIGHT, driver.execute_script("return document.documentElement.scrollHeight"))
    outer = driver.execute_script("return window.outerHeight - window.innerHeight")
    driver.set_window_size(2 * width - inner, height + outer)
    driver.save_screenshot(str(path))


def _page_name(spec: str) -> str:
    path, _, width = spec.rpartition("@")
    return "page-" + (path.strip("/").replace("/", "-") or "home") + f"-{width}"


def main() -> None:
    args = _args()
    for noisy in ("werkzeug", "peewee.migrations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    wanted = {name for name in args.only.split(",") if name}
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pw-screenshots-"))
    redis = start_redis(work / "redis", persist=False)
    driver = None
    try:
        from sandbox.server import ServerThread

        app, made = build_app(work, redis.url)
        with ServerThread(app) as server:
            driver = chromium()
            log_in(driver, server.url)
            shots = SHOTS
            if args.page:
                shots = [(_page_name(spec), int(spec.rpartition("@")[2]), lambda made, p=spec.rpartition("@")[0]: p)
                         for spec in args.page]
            for name, width, path_of in shots:
                if wanted and name not in wanted:
                    continue
                target = args.out / f"{name}.png"
                shoot(driver, server.url + path_of(made), width, target)
                print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}  "
                      f"{width} px  {path_of(made)}")
    finally:
        if driver is not None:
            driver.quit()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
