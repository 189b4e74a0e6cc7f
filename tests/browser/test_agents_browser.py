"""Agents in headless Chromium: add one, edit its phone in place, import a CSV through the page."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import log_in, text_at, text_of, wait_until
from webapp.storage import db
from webapp.storage.models import Agent

pytestmark = pytest.mark.browser


def agent_phone():
    with db.database.connection_context():
        return Agent.get(Agent.code == "AG7").phone


def test_staff_add_an_agent_and_edit_its_phone_in_place(browser, live_server, make_user):
    log_in(browser, live_server, make_user("staff"))
    browser.get(live_server.url + "/agents/")
    browser.find_element(By.CSS_SELECTOR, "#new-agent summary").click()
    browser.find_element(By.NAME, "name").send_keys("Amina Nakato")
    browser.find_element(By.NAME, "phone").send_keys("0772 123456")
    browser.find_element(By.NAME, "code").send_keys("AG7")
    browser.find_element(By.ID, "create-agent").click()
    wait_until(browser, lambda d: "Agent AG7 (Amina Nakato) added." in text_of(d, "flashes"))
    cell_id = browser.find_element(By.CSS_SELECTOR, "tr[data-code=AG7] td[data-field=phone]").get_attribute("id")
    assert text_of(browser, cell_id) == "+256772123456"

    # A click gives an input; a bad number is refused with the error next to it.
    browser.find_element(By.CSS_SELECTOR, f"#{cell_id} a.cell-edit").click()
    field = wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{cell_id} input[name=value]"))[0]
    wait_until(browser, lambda d: d.switch_to.active_element == field)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("0772", Keys.ENTER)
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{cell_id} small.error"))
    assert "Phone:" in text_at(browser, f"#{cell_id} small.error")
    assert agent_phone() == "+256772123456"

    # Escape gives the unchanged cell back.
    field = browser.find_element(By.CSS_SELECTOR, f"#{cell_id} input[name=value]")
    field.send_keys(Keys.ESCAPE)
    wait_until(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f"#{cell_id} input")
               and text_of(d, cell_id) == "+256772123456")

    # A good number, saved by leaving the field.
    browser.find_element(By.CSS_SELECTOR, f"#{cell_id} a.cell-edit").click()
    field = wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{cell_id} input[name=value]"))[0]
    wait_until(browser, lambda d: d.switch_to.active_element == field)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("+256 701 234567")
    browser.find_element(By.TAG_NAME, "h1").click()
    wait_until(browser, lambda d: text_of(d, cell_id) == "+256701234567")
    assert agent_phone() == "+256701234567"


def test_staff_import_a_csv_through_the_page_and_read_the_report(browser, live_server, make_user, tmp_path):
    path = tmp_path / "agents.csv"
    path.write_text("name,phone,code\nAmina,0772123456,AG7\nBrian,12,AG8\nCarol,+256701234567,AG9\n")
    log_in(browser, live_server, make_user("staff"))
    browser.get(live_server.url + "/agents/")
    browser.find_element(By.ID, "import-agents").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "import-form"))
    browser.find_element(By.CSS_SELECTOR, "#import-form input[type=file]").send_keys(str(path))
    browser.find_element(By.ID, "import-submit").click()
    wait_until(browser, lambda d: d.find_elements(By.ID, "import-report"))
    assert text_of(browser, "import-created") == "2" and text_of(browser, "import-rejected") == "1"
    assert "Phone:" in text_of(browser, "rejected-line-3")

    browser.get(live_server.url + "/agents/")
    codes = browser.execute_script("return [...document.querySelectorAll('#agents-table tr[data-code]')].map(e => e.dataset.code)")
    assert sorted(codes) == ["AG7", "AG9"]
