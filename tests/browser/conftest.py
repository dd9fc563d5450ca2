"""A real headless Chromium (Debian's chromium and chromium-driver, installed by ./dev test), driven by Selenium.

Selenium is given both paths, so Selenium Manager never runs and nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1280, 1000)

Browser = Callable[[str], webdriver.Chrome]


@pytest.fixture
def open_browser() -> Iterator[Browser]:
    """open_browser("pt-BR") starts a browser whose preferred language is pt-BR; every one is quit at the end."""
    started: list[webdriver.Chrome] = []

    def start(language: str = "en-US") -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--lang={language}",
                         "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"):  # fmt: skip
            options.add_argument(argument)
        options.add_experimental_option("prefs", {"intl.accept_languages": language})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        started.append(driver)
        return driver

    try:
        yield start
    finally:
        for driver in started:
            driver.quit()
