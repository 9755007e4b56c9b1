"""Helpers for tests (and docs/screenshots.py) that drive Debian's headless chromium against a live server.

`chromium()` opens a browser whose DevTools performance log records every request, so `requested_urls` can
tell whether a page reached any host but the service; `live_server()` runs `tagger serve` until the block ends;
`open_page` and `tag` use the web page at / as a person would.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, start_server, wait_ready

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
)


@contextlib.contextmanager
def chromium(profile: Path, width: int = 1440, height: int = 1000) -> Iterator[Any]:
    """A headless chromium (a selenium driver) with a fresh profile, logging every request; quit on exit."""
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        resize(driver, width, height)
        yield driver
    finally:
        driver.quit()


def resize(driver: Any, width: int, height: int) -> None:
    """Make the page's viewport width x height CSS pixels, as on a phone below 600 (a chromium window is
    500 px wide at least, so the viewport is emulated: the page's own viewport meta tag then applies)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


@contextlib.contextmanager
def live_server(models: Path, **env: str) -> Iterator[str]:
    """`tagger serve` on a free 127.0.0.1 port (environment `env` on top of start_server's), once ready;
    yields its base URL and kills it on exit."""
    port = free_port()
    process: subprocess.Popen[str] = start_server(models, port, **env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        process.kill()
        process.wait(10)


def requested_urls(driver: Any) -> list[str]:
    """Every network URL (http, https, ws) the browser asked for since the last call, from the DevTools events
    in the performance log; the browser's own pages (chrome://, data:, blob:) go to no host."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.split(":", 1)[0] in ("http", "https", "ws", "wss"):
                urls.append(url)
    return urls


def wait_for(driver: Any, script: str, seconds: float = 20.0) -> Any:
    """The first truthy value `script` returns in the page, polled; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = driver.execute_script(script)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the page never satisfied: {script}")


def open_page(browser: Any, base: str) -> Any:
    """The web page at / loaded, its models listed and its example tagged."""
    browser.get(f"{base}/")
    wait_for(browser, "return document.getElementById('raw').textContent")
    return browser


def tag(browser: Any, text: str, model: str) -> dict[str, Any]:
    """Type `text`, pick `model`, press Tag; the JSON answer the page got (from its foldable raw view)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    box = browser.find_element(By.ID, "text")
    box.clear()
    if all(ord(c) < 0x10000 for c in text):
        box.send_keys(text)
    else:  # chromedriver types no character beyond the BMP (the emoji)
        browser.execute_script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))", box, text
        )
    browser.execute_script("document.getElementById('raw').textContent = ''")
    select = Select(browser.find_element(By.ID, "model"))
    if select.first_selected_option.get_attribute("value") != model:
        select.select_by_value(model)  # a change of model tags at once
    else:
        browser.find_element(By.ID, "tag").click()
    return dict(json.loads(wait_for(browser, "return document.getElementById('raw').textContent")))
