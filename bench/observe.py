"""What an operator sees during a benchmark: /api/status, the API's and the monitor's Prometheus metrics,
and a screenshot of the web dashboard in headless Chromium (Debian's chromium and chromium-driver).

Used by `./dev bench steady --observe`: one look part-way through the load, printed and saved.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import requests

ADMIN_KEY = "bench-admin-key"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "img" / "dashboard-steady.png"
SHOWN = ("datafy_messages_received_total", "datafy_batches_sealed_total", "datafy_delivery_attempts_total",
         "datafy_pending_chats", "datafy_ready_batches", "datafy_dead_letters", "datafy_monitors_alive")  # fmt: skip


def observe_later(api_url: str, monitor_metrics_url: str, after: float) -> threading.Thread:
    """Look at the system `after` seconds from now, in a thread of its own."""
    thread = threading.Thread(target=_observe, args=(api_url, monitor_metrics_url, after), daemon=True)
    thread.start()
    return thread


def _observe(api_url: str, monitor_metrics_url: str, after: float) -> None:
    time.sleep(after)
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    status = requests.get(f"{api_url}/api/status", headers=auth, timeout=10).json()
    print("  observe: /api/status " + json.dumps({k: status[k] for k in ("chats", "batches", "dead_letters")})
          + f" monitors alive {status['monitors']['alive']}, receiver {status['receiver']['state']}, last minute "
          + json.dumps(status["deliveries"]["last_minute"]), flush=True)  # fmt: skip
    for name, url in (("API", f"{api_url}/metrics"), ("monitor", monitor_metrics_url)):
        text = requests.get(url, headers=auth, timeout=10).text
        lines = [line for line in text.splitlines() if line.startswith(SHOWN)]
        print(f"  observe: {name} metrics: " + "; ".join(lines), flush=True)
        lag = _histogram_quantiles(text, "datafy_delivery_lag_seconds")
        if lag:
            print(f"  observe: {name} datafy_delivery_lag_seconds {lag}", flush=True)
    _screenshot(api_url)


def _histogram_quantiles(text: str, name: str) -> str:
    """p50/p99 upper bounds of a Prometheus histogram, from its cumulative buckets."""
    found = re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M)
    buckets = sorted((float(le), float(v)) for le, v in found if le != "+Inf")
    count = sum(float(v) for v in re.findall(rf"^{name}_count (\S+)$", text, re.M))
    if not buckets or not count:
        return ""
    pick = {q: next((le for le, v in buckets if v >= q * count), float("inf")) for q in (0.5, 0.99)}
    return f"count {count:.0f}, p50 ≤ {pick[0.5]:g} s, p99 ≤ {pick[0.99]:g} s"


def _screenshot(api_url: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--window-size=1280,1000", "--lang=pt-BR", "--no-sandbox",
                     "--disable-dev-shm-usage", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "pt-BR"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(f"{api_url}/admin")
        WebDriverWait(driver, 15).until(ec.visibility_of_element_located((By.ID, "key"))).send_keys(ADMIN_KEY)
        driver.find_element(By.ID, "login-button").click()
        time.sleep(5)  # two refreshes: counters, charts and tables filled in
        height = driver.execute_script("return document.documentElement.scrollHeight")
        size = {"width": 1280, "height": min(height, 3000), "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", size)
        driver.save_screenshot(str(SCREENSHOT))
        print(f"  observe: dashboard screenshot in {SCREENSHOT}", flush=True)
    finally:
        driver.quit()
