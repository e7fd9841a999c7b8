"""Flower in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``) logs in and looks.

Screenshots go to ``test-artifacts/`` at the repository root.
"""

import shutil
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support import FLOWER_AUTH, WAIT_TIMEOUT, Api

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTH, HEIGHT = 1280, 900
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    """Headless Chromium driven by Debian's chromedriver, given by path so Selenium never downloads one."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(
            "the browser test needs Debian's chromium and chromium-driver: "
            "run make browser (devtools/ensure-chromium: apt-get, as root or through sudo)",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        chrome.set_page_load_timeout(WAIT_TIMEOUT)
        chrome.execute_cdp_cmd("Network.enable", {})
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture
def browser(chromium: WebDriver) -> WebDriver:
    """The browser logged into Flower: every request it makes carries the basic-auth header."""
    chromium.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": FLOWER_AUTH})
    return chromium


@pytest.fixture
def anonymous_browser(chromium: WebDriver) -> WebDriver:
    """The browser with no credentials."""
    chromium.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
    return chromium


def test_the_browser_sees_the_worker_online(browser: WebDriver, flower: str) -> None:
    worker = f"otp@{socket.gethostname()}"

    browser.get(flower + "/workers")
    status = WebDriverWait(browser, WAIT_TIMEOUT, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda driver: (
            driver.find_element(
                By.XPATH, f"//table[@id='workers-table']//tr[td[normalize-space()='{worker}']]/td[2]/span[@class]"
            ).text
        )
    )  # the status badge, which Flower's script draws from its API (the page itself only says True)
    picture = screenshot(browser, "flower-workers.png")

    assert status == "Online"
    assert_picture(picture)


async def test_the_browser_sees_the_delivered_send_task_succeeded(browser: WebDriver, flower: str, api: Api) -> None:
    otp_id = await api.send()
    await api.delivered(otp_id)

    browser.get(flower + "/tasks")
    search = WebDriverWait(browser, WAIT_TIMEOUT).until(
        lambda driver: driver.find_element(By.CSS_SELECTOR, "#tasks-table_filter input")
    )
    search.send_keys(f"args:{otp_id}")
    name, state, link = WebDriverWait(browser, WAIT_TIMEOUT, ignored_exceptions=[StaleElementReferenceException]).until(
        finished_task(f"args:{otp_id}")
    )
    tasks_picture = screenshot(browser, "flower-tasks.png")
    browser.get(link)
    task_picture = screenshot(browser, "flower-task.png")

    assert (name, state) == ("otp.send", "SUCCESS")
    assert detail(browser, "Name") == "otp.send"
    assert detail(browser, "Status") == "SUCCESS"
    assert detail(browser, "Arguments") == f"[[['{otp_id}', 1]]]"  # a batch of [otp_id, job number] pairs
    assert_picture(tasks_picture)
    assert_picture(task_picture)


def test_the_browser_without_credentials_gets_401(anonymous_browser: WebDriver, flower: str) -> None:
    anonymous_browser.get(flower + "/workers")

    status = anonymous_browser.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus")
    assert status == 401
    assert anonymous_browser.find_elements(By.ID, "workers-table") == []


def finished_task(query: str) -> Callable[[WebDriver], tuple[str, str, str] | None]:
    """A wait condition: the name, state and link of the one task the tasks table shows for ``query`` once
    it has finished. Flower's table does not refresh by itself, so each miss asks it for a new draw."""

    def probe(driver: WebDriver) -> tuple[str, str, str] | None:
        searched = driver.execute_script("return $('#tasks-table').DataTable().search()") == query
        drawn = not driver.find_element(By.ID, "tasks-table_processing").is_displayed()  # no answer awaited
        rows = driver.find_elements(By.CSS_SELECTOR, "#tasks-table tbody tr[id]")  # a task row has its uuid as id
        if searched and drawn and len(rows) == 1:
            name, uuid, state = rows[0].find_elements(By.TAG_NAME, "td")[:3]  # Flower's default columns
            if state.text in ("SUCCESS", "FAILURE"):
                return name.text, state.text, uuid.find_element(By.TAG_NAME, "a").get_attribute("href") or ""
        driver.execute_script("$('#tasks-table').DataTable().draw(false)")
        return None

    return probe


def detail(browser: WebDriver, label: str) -> str:
    """The value of one line of Flower's task page."""
    return str(browser.find_element(By.XPATH, f"//dt[normalize-space()='{label}']/following-sibling::dd").text)


def screenshot(browser: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert browser.save_screenshot(str(path))
    return path


def assert_picture(path: Path) -> None:
    """``path`` is a PNG as wide as the browser's window, with more in it than a blank page."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, _ = struct.unpack(">II", data[16:24])  # the height is the window's less its frame
    assert width == WIDTH
    assert len(data) > 20_000
