"""The dashboard as an operator uses it, in a real browser, against real gunicorn, monitor, receiver and Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from devtools.processes import system
from devtools.receiver import Receiver, Reply
from devtools.redis_server import PROJECT_ROOT
from tests.browser.conftest import Browser
from tests.support.env import TEST_ENV

KEY = TEST_ENV["ADMIN_API_KEY"]
SCREENSHOT = PROJECT_ROOT / "docs" / "img" / "dashboard.png"
HOSTILE = '<img src=x onerror="document.title=1">'  # a user id is whatever the gateway sent


@pytest.fixture
def api_url(env: dict[str, str], receiver: Receiver, redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    env.update(WEBHOOK_URL=receiver.url)
    with system(env, tmp_path) as (api, _monitor):
        yield api.extra["url"]


def send(api_url: str, user: str, message: str, ttl: float = 300) -> None:
    reply = requests.post(f"{api_url}/api/message", json={"user": user, "message": message, "ttl": ttl}, timeout=5)
    assert reply.status_code == 200, reply.text


def wait(driver: WebDriver, timeout: float = 15) -> WebDriverWait:
    """Polls every 0.1 s; an element redrawn by the page's refresh (stale) only means "look again"."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])


def log_in(driver: WebDriver, api_url: str, key: str) -> None:
    driver.get(f"{api_url}/admin")
    field = wait(driver).until(ec.visibility_of_element_located((By.ID, "key")))
    field.send_keys(key)
    driver.find_element(By.ID, "login-button").click()


def row(driver: WebDriver, attribute: str, value: str) -> WebElement:
    """The table row whose data attribute is `value` (compared in the browser: no selector built from data)."""
    for found in driver.find_elements(By.CSS_SELECTOR, f"tr[{attribute}]"):
        if found.get_attribute(attribute) == value:
            return found
    raise NoSuchElementException(f"no row with {attribute}={value!r}")


def has_row(attribute: str, value: str) -> Callable[[WebDriver], bool]:
    """A WebDriverWait condition: such a row is on the page."""
    return lambda driver: any(
        r.get_attribute(attribute) == value for r in driver.find_elements(By.CSS_SELECTOR, f"tr[{attribute}]")
    )


def press(driver: WebDriver, attribute: str, value: str, action: str, label: str) -> None:
    """Click the `action` button of a row, after checking its label (found again if a refresh redrew the row)."""

    def click(driver: WebDriver) -> bool:
        button = row(driver, attribute, value).find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]')
        assert button.text == label
        button.click()
        return True

    wait(driver).until(click)


def status_exists(api_url: str) -> bool:
    return (
        requests.get(f"{api_url}/api/status", headers={"Authorization": f"Bearer {KEY}"}, timeout=5).status_code != 404
    )


def test_flush_and_replay_from_the_dashboard_reach_the_receiver(
    api_url: str, receiver: Receiver, open_browser: Browser
) -> None:
    receiver.behaviour = lambda batch, nth: Reply(410)  # gone: a dead letter at the first attempt
    send(api_url, "5511900000009", "pedido 42: cancelado?", ttl=0.05)
    assert receiver.wait_for(lambda r: len(r.received) == 1, timeout=10)
    receiver.behaviour = lambda batch, nth: Reply(200)
    send(api_url, "5511900000001", "oi")
    send(api_url, "5511900000001", "queria saber o preço")
    send(api_url, HOSTILE, "<b>not bold</b>", ttl=600)
    for n in range(6):  # some traffic for the charts
        send(api_url, f"55119000001{n:02d}", "obrigado!", ttl=0.05 * (n + 1))
    assert receiver.wait_for(lambda r: len(r.delivered) == 6, timeout=10)
    pause = requests.post(f"{api_url}/api/chats/5511900000007/pause", json={"for": "1h"},
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=5)  # fmt: skip
    assert pause.status_code == 200  # a person took a chat over: the board counts it

    driver = open_browser("pt-BR")
    log_in(driver, api_url, KEY)
    wait(driver).until(has_row("data-user", "5511900000001"))
    wait(driver).until(has_row("data-batch", receiver.received[0].body["batch_id"]))
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "pt-BR"
    users = lambda d: [cell.text for cell in d.find_elements(By.CSS_SELECTOR, "#chats-body td.user")]  # noqa: E731
    wait(driver).until(lambda d: users(d) == ["5511900000001", HOSTILE])  # soonest first; the id is text, not markup
    assert driver.find_elements(By.CSS_SELECTOR, "#board img") == [] and driver.title != "1"
    assert "?" not in driver.current_url and KEY not in driver.current_url

    press(driver, "data-user", "5511900000001", "peek", "Ver")
    peeked = wait(driver).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#chats-body tr.peek pre")))
    assert "queria saber o preço" in peeked.text

    dead_id = receiver.received[0].body["batch_id"]
    dead = wait(driver).until(lambda d: row(d, "data-batch", dead_id))
    assert "410" in dead.find_element(By.CSS_SELECTOR, "td.last-error").text
    dead.find_element(By.TAG_NAME, "summary").click()
    payload = wait(driver).until(lambda d: row(d, "data-batch", dead_id).find_element(By.TAG_NAME, "pre"))
    assert "pedido 42: cancelado?" in payload.text
    if status_exists(api_url):
        counter = lambda name: driver.find_element(By.CSS_SELECTOR, f'[data-counter="{name}"] .value').text  # noqa: E731
        wait(driver).until(lambda d: counter("pending") == "2" and counter("delivered15") == "6")
        assert counter("deadLettersCount") == "1" and int(counter("monitorsAlive")) >= 1
        assert (counter("paused"), counter("held")) == ("1", "0")
        assert driver.find_elements(By.CSS_SELECTOR, "#chart-deliveries rect.bar")
        assert driver.find_elements(By.CSS_SELECTOR, "#chart-lag circle.p99")
        assert driver.find_elements(By.CSS_SELECTOR, "#monitors-body td")
    else:
        assert driver.find_element(By.CSS_SELECTOR, "#overview .status-missing").is_displayed()
    save_screenshot(driver)

    press(driver, "data-user", "5511900000001", "flush", "Enviar agora")
    assert receiver.wait_for(lambda r: any(b["user"] == "5511900000001" for b in r.delivered), timeout=10)
    batch = next(b for b in receiver.delivered if b["user"] == "5511900000001")
    assert batch["messages"] == ["oi", "queria saber o preço"] and batch["flush_reason"] == "manual"
    wait(driver).until(lambda d: not has_row("data-user", "5511900000001")(d))
    assert "5511900000001" in driver.find_element(By.ID, "notice").text

    press(driver, "data-batch", dead_id, "replay", "Reenviar")
    assert receiver.wait_for(lambda r: any(b["batch_id"] == dead_id for b in r.delivered), timeout=10)
    wait(driver).until(lambda d: not has_row("data-batch", dead_id)(d))
    assert [b["messages"] for b in receiver.delivered if b["batch_id"] == dead_id] == [["pedido 42: cancelado?"]]
    assert csp_violations(driver) == []


def test_a_wrong_key_shows_an_error_and_nothing_else(api_url: str, open_browser: Browser) -> None:
    send(api_url, "5511900000002", "segredo")
    driver = open_browser("en-US")
    log_in(driver, api_url, "not-the-key")
    error = wait(driver).until(ec.visibility_of_element_located((By.ID, "error")))
    assert error.text == "Wrong key: access denied."
    time.sleep(0.5)  # a late reply must not show anything either
    assert not driver.find_element(By.ID, "board").is_displayed()
    assert driver.find_elements(By.CSS_SELECTOR, "#board tr[data-user], #board .counter") == []
    assert "segredo" not in driver.page_source and "5511900000002" not in driver.page_source
    assert driver.execute_script("return sessionStorage.length") == 0
    assert driver.find_element(By.ID, "login-button").text == "Log in"

    log_in(driver, api_url, KEY)  # the right key, then, shows it
    wait(driver).until(has_row("data-user", "5511900000002"))
    assert not driver.find_element(By.ID, "error").is_displayed()


def test_discard_and_delete_ask_first_and_then_forget(api_url: str, receiver: Receiver, open_browser: Browser) -> None:
    receiver.behaviour = lambda batch, nth: Reply(410)
    send(api_url, "5511900000003", "vou falar com um humano", ttl=0.05)
    assert receiver.wait_for(lambda r: len(r.received) == 1, timeout=10)
    dead_id = receiver.received[0].body["batch_id"]
    send(api_url, "5511900000004", "um atendente, por favor")
    driver = open_browser("en-US")
    log_in(driver, api_url, KEY)
    wait(driver).until(has_row("data-batch", dead_id))
    wait(driver).until(has_row("data-user", "5511900000004"))

    press(driver, "data-user", "5511900000004", "discard", "Discard")
    dialog = wait(driver).until(ec.alert_is_present())
    assert "5511900000004" in dialog.text
    dialog.dismiss()  # "no" keeps it
    time.sleep(0.5)
    assert has_row("data-user", "5511900000004")(driver)
    press(driver, "data-user", "5511900000004", "discard", "Discard")
    wait(driver).until(ec.alert_is_present()).accept()
    wait(driver).until(lambda d: not has_row("data-user", "5511900000004")(d))
    assert "Discarded 1 message(s)" in driver.find_element(By.ID, "notice").text

    press(driver, "data-batch", dead_id, "delete", "Delete")
    wait(driver).until(ec.alert_is_present()).accept()
    wait(driver).until(lambda d: not has_row("data-batch", dead_id)(d))
    headers = {"Authorization": f"Bearer {KEY}"}
    assert requests.get(f"{api_url}/api/dead-letters", headers=headers, timeout=5).json()["total"] == 0
    assert requests.get(f"{api_url}/api/chats", headers=headers, timeout=5).json()["total"] == 0
    time.sleep(0.5)
    assert len(receiver.received) == 1  # the discarded chat was never sent


def save_screenshot(driver: WebDriver) -> None:
    """The logged-in dashboard with data, the whole page at 1280 px wide, for the README."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": 1280, "height": min(height, 3000), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def csp_violations(driver: WebDriver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
