"""The web page at / in a real browser (Debian's headless chromium) against `tagger serve` on the shipped models:
what a person judging the tagger sees, read from the DOM, checked against the JSON the page got.

The first tests need no browser: the page, its headers and files, and TAGGER_UI=false, from a TestClient.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import DEFAULT_MODELS, Settings
from tests.browser.chrome import chromium, live_server, open_page, requested_urls, resize, tag, wait_for
from tests.helpers import get, post

EXAMPLE = "Tim Cook visited the Apple store in Berlin on Monday."
LIMIT = 200  # TAGGER_MAX_TEXT_CHARS of the live server


def in_browser(test: Any) -> Any:
    """Marks a test that drives chromium against a live server (so it is also slow)."""
    return pytest.mark.browser(pytest.mark.server(test))


def client(**settings: Any) -> TestClient:
    """The app on the shipped models, lifespan not started: enough for the page, which runs no model."""
    return TestClient(create_app(Settings(models=DEFAULT_MODELS, warmup=False, inference_process=False, **settings)))


def test_the_page_is_served_with_a_strict_content_security_policy() -> None:
    page = client().get("/")
    policy = page.headers["content-security-policy"]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="ui/ui.js" defer>']  # nothing inline
    assert " style=" not in page.text and "<style" not in page.text and "http" not in page.text  # no CDN either
    assert 'href="docs"' in page.text


@pytest.mark.parametrize(
    ("path", "media"),
    [("/ui/ui.js", "text/javascript"), ("/ui/ui.css", "text/css"), ("/ui/favicon.svg", "image/svg+xml")],
)
def test_the_pages_files_come_from_the_service(path: str, media: str) -> None:
    answer = client().get(path)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(media)


def test_the_page_is_not_part_of_the_api_document() -> None:
    paths = client().get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/ui") for p in paths)


def test_without_docs_the_page_does_not_link_to_them() -> None:
    assert 'href="docs"' not in client(docs=False).get("/").text


def test_with_the_page_turned_off_slash_is_a_404_like_any_unknown_route() -> None:
    off = client(ui=False)
    assert off.get("/").status_code == 404 and off.get("/").json()["error"]["reason"] == "not_found"
    assert off.get("/ui/ui.js").status_code == 404
    assert off.get("/v1/models").status_code == 200


def test_tagger_ui_false_in_the_environment_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGGER_UI", "false")
    assert client().get("/").status_code == 404


# --- in the browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with live_server(DEFAULT_MODELS, TAGGER_DEFAULT_MODEL="en-ner", TAGGER_MAX_TEXT_CHARS=str(LIMIT)) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


SHOWN_TEXT = """
const box = document.querySelector('#result .text').cloneNode(true);
box.querySelectorAll('.badge, .tag').forEach(e => e.remove());
return box.textContent;
"""


@pytest.mark.parametrize("text", [EXAMPLE, "😀 Tim Cook  visited Berlin.\nAngela Merkel met him at Siemens in Munich."])
@in_browser
def test_en_ner_highlights_each_entity_with_its_label(browser: Any, base: str, text: str) -> None:
    answer = tag(open_page(browser, base), text, "en-ner")
    spans = answer["results"][0]["spans"]
    shown = browser.execute_script(
        "return [...document.querySelectorAll('mark.ent')].map(m => [m.querySelector('.ent-text').textContent,"
        " m.dataset.label, m.querySelector('.badge').textContent])"
    )
    assert ["Tim Cook", "PER", f"PER {spans[0]['score']:.2f}"] in shown and ["Berlin", "LOC"] in [s[:2] for s in shown]
    # each highlight holds the characters its span's offsets name; offsets count code points (Python's str),
    # so the page cuts Array.from(text), not text.slice (UTF-16), and the emoji does not shift the entities
    assert (
        [s[0] for s in shown]
        == ["".join(list(text)[s["start_char"] : s["end_char"]]) for s in spans]
        == [s["text"] for s in spans]
    )
    assert browser.execute_script(SHOWN_TEXT) == text  # the text as typed, gaps and line breaks kept


@in_browser
def test_en_upos_puts_a_tag_under_each_token(browser: Any, base: str) -> None:
    text = "I don't like green eggs.\n\nSam  does."
    result = tag(open_page(browser, base), text, "en-upos")["results"][0]
    assert "spans" not in result
    cells = browser.execute_script(
        "return [...document.querySelectorAll('.tt')].map(t => [t.querySelector('.tok').textContent,"
        " t.querySelector('.tag').textContent, t.querySelector('.tag').offsetTop > t.querySelector('.tok').offsetTop])"
    )
    assert cells == [[token, tag, True] for token, tag in zip(result["tokens"], result["tags"], strict=True)]
    assert ["like", "VERB", True] in cells and ["eggs", "NOUN", True] in cells
    assert browser.execute_script(SHOWN_TEXT) == text


@in_browser
def test_a_text_over_the_limit_shows_the_apis_own_message(browser: Any, base: str) -> None:
    text = "Berlin is big. " * 20  # 300 characters
    status, body = post(f"{base}/v1/models/en-ner/tag", {"texts": [text], "scores": True})
    error = json.loads(body)["error"]
    open_page(browser, base)
    tag(browser, text, "en-ner")
    assert status == 422 and "over the limit" in browser.find_element("id", "count").text  # warned, sent anyway
    shown = browser.execute_script(
        "const e = document.getElementById('error'); return [e.hidden, e.querySelector('.status').textContent,"
        " e.querySelector('.message').textContent, e.querySelector('.field code').textContent]"
    )
    assert shown == [False, "422", error["message"], "texts[0]"]
    assert browser.execute_script("return document.querySelectorAll('#result .text').length") == 0


REFUSE = """
window.fetch = async () => new Response(
  JSON.stringify({error: {status: 503, reason: "queue_full", message: "queue full: 4096 sentences waiting"}}),
  {status: 503, headers: {"Content-Type": "application/json", "Retry-After": "7"}});
"""


@in_browser
def test_a_503_says_when_to_retry_and_a_network_failure_is_shown(browser: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, base)
    browser.execute_script(REFUSE)  # the page's fetch answered as a full queue answers (not reliably made here)
    browser.find_element(By.ID, "tag").click()
    error = wait_for(browser, "const e = document.getElementById('error'); return !e.hidden && e.textContent")
    assert "503" in error and "queue full: 4096 sentences waiting" in error and "retry in 7 s" in error
    browser.execute_script("window.fetch = () => Promise.reject(new TypeError('Failed to fetch'))")
    browser.find_element(By.ID, "tag").click()
    error = wait_for(browser, "const t = document.getElementById('error').textContent; return /reach/.test(t) && t")
    assert error == "could not reach the service (Failed to fetch)"


@in_browser
def test_a_401_asks_for_an_api_key_then_sends_it(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    key = "k-0123456789abcdef-browser"
    (tmp_path / "keys").write_text(key + "\n", encoding="utf-8")
    keys = {"TAGGER_API_KEYS_FILE": str(tmp_path / "keys"), "TAGGER_DEFAULT_MODEL": "en-ner", "TAGGER_WARMUP": "false"}
    with live_server(DEFAULT_MODELS, **keys) as keyed:
        assert get(f"{keyed}/")[0] == 200  # the page needs no key, its API calls do
        browser.get(f"{keyed}/")
        error = wait_for(browser, "const e = document.getElementById('error'); return !e.hidden && e.textContent")
        assert error.startswith("401") and "API key" in error
        assert browser.execute_script("return !document.getElementById('auth').hidden")
        assert browser.switch_to.active_element.get_attribute("id") == "key"
        browser.switch_to.active_element.send_keys(key + "\n")
        answer = json.loads(wait_for(browser, "return document.getElementById('raw').textContent"))
        assert answer["model"] == "en-ner" and answer["results"][0]["tokens"][:2] == ["Tim", "Cook"]
        assert browser.execute_script("return sessionStorage.getItem('tagger.apiKey')") == key
        assert browser.execute_script("return document.getElementById('error').hidden")
        assert '"Authorization: Bearer $TAGGER_API_KEY"' in browser.find_element(By.ID, "curl").get_attribute(
            "textContent"
        )  # the command names the key, never shows it


def low_tokens(browser: Any, threshold: float) -> tuple[float, list[bool]]:
    """Move the threshold slider (it snaps to steps of 0.01): (the value it took, which tokens are marked)."""
    value = browser.execute_script(
        "const t = document.getElementById('threshold'); t.value = arguments[0];"
        " t.dispatchEvent(new Event('input')); return Number(t.value)",
        threshold,
    )
    return value, browser.execute_script("return [...document.querySelectorAll('.tok')].map(t => t.matches('.low'))")


@pytest.mark.parametrize("model", ["en-ner", "en-upos"])
@in_browser
def test_the_threshold_marks_low_scores_without_asking_again(browser: Any, base: str, model: str) -> None:
    scores = tag(open_page(browser, base), EXAMPLE, model)["results"][0]["scores"]
    requested_urls(browser)  # from here on
    assert low_tokens(browser, 1.0) == (1.0, [True] * len(scores))
    assert low_tokens(browser, 0.0) == (0.0, [False] * len(scores))
    value, marked = low_tokens(browser, 0.99)
    assert value == 0.99 and marked == [s <= 0.99 for s in scores]
    assert browser.find_element("id", "threshold-value").text == "0.99"
    assert not [url for url in requested_urls(browser) if "/tag" in url]


@in_browser
def test_the_page_asks_no_host_but_the_service(browser: Any, base: str) -> None:
    tag(open_page(browser, base), EXAMPLE, "en-upos")
    urls = requested_urls(browser)
    assert {f"{base}/ui/ui.js", f"{base}/ui/ui.css", f"{base}/v1/models", f"{base}/v1/models/en-upos/tag"} <= set(urls)
    assert all(url.startswith(f"{base}/") for url in urls), [u for u in urls if not u.startswith(base)]


@in_browser
def test_keyboard_ctrl_enter_tags_and_tab_walks_the_controls(browser: Any, base: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_page(browser, base)
    browser.execute_script("document.getElementById('text').focus(); document.getElementById('raw').textContent = ''")
    focused = browser.switch_to.active_element
    focused.send_keys(Keys.CONTROL, "a")
    focused.send_keys("Angela Merkel lives in Paris.")
    ActionChains(browser).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()
    answer = json.loads(wait_for(browser, "return document.getElementById('raw').textContent"))
    assert answer["results"][0]["tokens"][:2] == ["Angela", "Merkel"]
    assert browser.execute_script(SHOWN_TEXT) == "Angela Merkel lives in Paris."
    order = []
    for _ in range(4):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        order.append(browser.switch_to.active_element.get_attribute("id"))
    assert order == ["model", "tag", "threshold", "every-tag"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl here")
@in_browser
def test_the_curl_command_shown_gets_the_same_answer(browser: Any, base: str) -> None:
    answer = tag(open_page(browser, base), "Tim Cook's store in Berlin sells 'iPhones'.", "en-ner")
    command = browser.find_element("id", "curl").get_attribute("textContent")
    assert command.startswith(f"curl -sS '{base}/v1/models/en-ner/tag'")
    ran = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(ran.stdout)["results"] == answer["results"]


NO_OVERFLOW = "return document.documentElement.scrollWidth"


@pytest.mark.parametrize("width", [360, 1440])
@in_browser
def test_screenshots_and_nothing_wider_than_the_screen(browser: Any, base: str, tmp_path: Path, width: int) -> None:
    resize(browser, width, 900)
    tag(open_page(browser, base), EXAMPLE, "en-ner")
    browser.save_screenshot(str(tmp_path / f"ui-{width}.png"))
    assert browser.execute_script(NO_OVERFLOW) <= width + 2
    # the folded panels open, a token too long for a line, the tag view: still no sideways scrolling
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    tag(browser, "Go to " + "x" * 120 + " now.", "en-upos")
    browser.save_screenshot(str(tmp_path / f"ui-upos-{width}.png"))
    assert browser.execute_script(NO_OVERFLOW) <= width + 2
    for name in (f"ui-{width}.png", f"ui-upos-{width}.png"):
        assert (tmp_path / name).stat().st_size > 10_000
