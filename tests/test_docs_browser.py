"""/docs in a real browser (Debian's headless chromium): the operations render, and every file the page loads
comes from the service itself, so it works on a host with no internet access."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, start_server, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.trains, pytest.mark.server]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def base(models_dir: Path) -> Iterator[str]:
    port = free_port()
    process: subprocess.Popen[str] = start_server(models_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        process.kill()
        process.wait(10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1440,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """Every network URL (http, https, ws) the browser asked for, from the DevTools events in the performance
    log; the browser's own pages (chrome://, data:, blob:) go to no host."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.split(":", 1)[0] in ("http", "https", "ws", "wss"):
                urls.append(url)
    return urls


def wait_for(driver: Any, script: str, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = driver.execute_script(script)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the page never satisfied: {script}")


def test_swagger_ui_renders_every_operation_from_local_files(browser: Any, base: str, tmp_path: Path) -> None:
    browser.get(f"{base}/docs")
    count = wait_for(browser, "return document.querySelectorAll('.opblock').length")
    titles = browser.execute_script(
        "return [...document.querySelectorAll('.opblock-summary-description')].map(e => e.textContent)"
    )
    browser.save_screenshot(str(tmp_path / "docs.png"))
    assert count >= 7 and "Tag with a named model" in titles and "Tag with the default model" in titles
    urls = requested_urls(browser)
    assert any(url.endswith("/docs-assets/swagger-ui-bundle.js") for url in urls)
    assert all(url.startswith(base) for url in urls), [u for u in urls if not u.startswith(base)]
    assert (tmp_path / "docs.png").stat().st_size > 10_000


def test_there_is_no_redoc_page_that_would_call_a_cdn(base: str) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{base}/redoc", timeout=10)
    assert caught.value.code == 404
