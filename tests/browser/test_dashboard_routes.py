"""The dashboard with routes, in a real browser against real gunicorn and Redis: a route's admin key sees its own
route and chats only; an environment admin key sees every route and can add one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec

from devtools.processes import running, start_api
from tests.browser.conftest import Browser
from tests.browser.test_dashboard import csp_violations, log_in, press, wait
from tests.support.env import TEST_ENV

ENVIRONMENT_KEY = TEST_ENV["ADMIN_API_KEY"]
ROUTES = {
    "loja-a": {"api_key": "loja-a-ingest-key-0001", "admin_key": "loja-a-admin-key-00a1", "user": "5511911110001",
               "message": "quero o pedido da loja A"},
    "loja-b": {"api_key": "loja-b-ingest-key-0002", "admin_key": "loja-b-admin-key-00b2", "user": "5511922220002",
               "message": "quero o pedido da loja B"},
}  # fmt: skip


@pytest.fixture
def api_url(env: dict[str, str], redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    """The API with two routes, each with one pending chat sent with the route's own ingest key."""
    env.update(API_KEY="environment-ingest-key-0000", INGEST_AUTH="on")  # an unknown key is refused, not `default`'s
    api = start_api(env, tmp_path)
    with running(api):
        url = api.extra["url"]
        for name, route in ROUTES.items():
            doc = {"name": name, "webhook_url": f"http://127.0.0.1:9/{name}", "api_keys": [route["api_key"]],
                   "admin_keys": [route["admin_key"]]}  # fmt: skip
            created = requests.post(f"{url}/api/routes", json=doc, headers=admin(ENVIRONMENT_KEY), timeout=5)
            assert created.status_code == 201, created.text
            send(url, route["api_key"], route["user"], route["message"])
        yield url


def send(url: str, key: str, user: str, message: str) -> None:
    """One message with a route's key; a worker that has not yet seen a new route refuses it for up to ~1 s."""
    deadline = time.monotonic() + 5
    while True:
        sent = requests.post(f"{url}/api/message", json={"user": user, "message": message, "ttl": 300},
                             headers={"X-API-Key": key}, timeout=5)  # fmt: skip
        if sent.status_code != 401 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sent.status_code == 200, sent.text


def admin(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def texts(driver: WebDriver, selector: str) -> list[str]:
    return [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, selector)]


def route_names(driver: WebDriver) -> list[str]:
    return [row.get_attribute("data-route") or "" for row in driver.find_elements(By.CSS_SELECTOR, "#routes-body tr")]


def chats(driver: WebDriver) -> list[tuple[str, str]]:
    """(user, route) of every pending chat row, as the page shows them."""
    rows = driver.find_elements(By.CSS_SELECTOR, "#chats-body tr[data-user]")
    return [(row.find_element(By.CSS_SELECTOR, "td.user").text, row.find_element(By.CSS_SELECTOR, "td.route").text)
            for row in rows]  # fmt: skip


def test_a_route_admin_key_sees_only_its_own_route_and_chats(api_url: str, open_browser: Browser) -> None:
    driver = open_browser("en-US")
    log_in(driver, api_url, ROUTES["loja-a"]["admin_key"])
    wait(driver).until(lambda d: chats(d) == [("5511911110001", "loja-a")])
    wait(driver).until(lambda d: route_names(d) == ["loja-a"])
    shown = driver.find_element(By.CSS_SELECTOR, "#routes-body tr")
    assert shown.find_element(By.CSS_SELECTOR, "td.url").text == "http://127.0.0.1:9/loja-a"
    assert shown.find_element(By.CSS_SELECTOR, "td.keys").text == "API …0001 · admin …00a1"
    assert texts(driver, "#routes thead th") == ["Route", "Webhook URL", "Keys", "Match"]
    assert not driver.find_element(By.ID, "route-form").is_displayed()  # only an environment key adds routes
    page = driver.page_source
    for hidden in ("loja-b", "5511922220002", "loja B", "default", "loja-a-ingest-key", "loja-a-admin-key"):
        assert hidden not in page

    press(driver, "data-user", "5511911110001", "peek", "Peek")
    peeked = wait(driver).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#chats-body tr.peek pre")))
    assert "quero o pedido da loja A" in peeked.text
    assert csp_violations(driver) == []


def test_the_environment_key_sees_every_route_and_adds_one(api_url: str, open_browser: Browser) -> None:
    driver = open_browser("en-US")
    log_in(driver, api_url, ENVIRONMENT_KEY)
    wait(driver).until(lambda d: sorted(chats(d)) == [("5511911110001", "loja-a"), ("5511922220002", "loja-b")])
    wait(driver).until(lambda d: route_names(d) == ["default", "loja-a", "loja-b"])
    assert texts(driver, "#routes-body td.name")[0] == "default (environment)"
    form = driver.find_element(By.ID, "route-form")
    assert form.is_displayed()

    press(driver, "data-user", "5511922220002", "peek", "Peek")  # a route's chat, opened with the environment key
    peeked = wait(driver).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#chats-body tr.peek pre")))
    assert "quero o pedido da loja B" in peeked.text

    typed_key = "loja-c-ingest-key-00c3"
    fill_route_form(driver, "loja-c", "not a url", typed_key, "")
    error = wait(driver).until(ec.visibility_of_element_located((By.ID, "route-error")))
    assert error.text == "webhook_url must be an http:// or https:// URL with a host (webhook_url)"
    assert driver.find_element(By.ID, "route-key").get_attribute("value") == ""
    assert route_names(driver) == ["default", "loja-a", "loja-b"]

    fill_route_form(driver, "loja-c", "https://n8n.example.com/webhook/loja-c", typed_key, "loja-c-evolution")
    wait(driver).until(lambda d: route_names(d) == ["default", "loja-a", "loja-b", "loja-c"])
    added = driver.find_elements(By.CSS_SELECTOR, "#routes-body tr")[-1]
    cells = [cell.text for cell in added.find_elements(By.TAG_NAME, "td")]
    assert cells == [
        "loja-c",
        "https://n8n.example.com/webhook/loja-c",
        "API …00c3",
        "evolution_instance: loja-c-evolution",
    ]
    assert driver.find_element(By.ID, "notice").text == "Route loja-c added."
    assert not driver.find_element(By.ID, "route-error").is_displayed()
    assert [field.get_attribute("value") for field in form.find_elements(By.TAG_NAME, "input")] == ["", "", "", ""]
    assert typed_key not in driver.page_source

    listed = requests.get(f"{api_url}/api/routes", headers=admin(ENVIRONMENT_KEY), timeout=5).json()["routes"]
    stored = next(route for route in listed if route["name"] == "loja-c")
    assert stored["webhook_url"] == "https://n8n.example.com/webhook/loja-c" and stored["api_keys"] == ["…00c3"]
    assert stored["match"] == {"evolution_instance": ["loja-c-evolution"]}
    send(api_url, typed_key, "5511933330003", "oi")  # the key typed in the form opens the new route
    wait(driver).until(lambda d: ("5511933330003", "loja-c") in chats(d))
    assert csp_violations(driver) == []


def fill_route_form(driver: WebDriver, name: str, url: str, key: str, instance: str) -> None:
    for field, value in (
        ("route-name", name),
        ("route-webhook", url),
        ("route-key", key),
        ("route-instance", instance),
    ):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    driver.find_element(By.ID, "route-add").click()
