"""/docs in a real browser (Debian's headless chromium): the operations render, and every file the page loads
comes from the service itself, so it works on a host with no internet access."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chrome import chromium, live_server, requested_urls, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.trains, pytest.mark.server]


@pytest.fixture(scope="module")
def base(models_dir: Path) -> Iterator[str]:
    with live_server(models_dir) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


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
