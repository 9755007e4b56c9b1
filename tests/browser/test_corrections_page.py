"""The web page's correct mode and review tab in Debian's headless chromium, against `tagger serve` (the shipped
en-ner) with a corrections database: a person shrinks, extends, relabels, removes and adds entities, submits,
and the correction is in the database as they made it; a sentence from the review queue is corrected from the
review tab and leaves the queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.corrections.store import CorrectionStore
from service.settings import DEFAULT_MODELS
from tests.browser.chrome import chromium, live_server, open_page, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.server]

EXAMPLE = "Tim Cook visited the Apple store in Berlin on Monday."  # the page's own example, tagged on arrival
SERVED = ["B-PER", "I-PER", "O", "O", "B-ORG", "O", "O", "B-LOC", "O", "O", "O"]  # en-ner's tags for it


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corrections") / "corrections.db"


@pytest.fixture(scope="module")
def base(database: Path) -> Iterator[str]:
    env = {"TAGGER_DEFAULT_MODEL": "en-ner", "TAGGER_CORRECTIONS_DB": str(database), "TAGGER_REVIEW_SAMPLE": "1"}
    with live_server(DEFAULT_MODELS, **env) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


def by_id(browser: Any, name: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, name)


def click_token(browser: Any, i: int) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, f'#editor .tk[data-i="{i}"]').click()


def pick(browser: Any, label: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(by_id(browser, "label")).select_by_value(label)
    by_id(browser, "apply").click()


def tags_shown(browser: Any) -> list[str]:
    return list(browser.execute_script("return [...document.querySelectorAll('#editor .tk')].map(b => b.dataset.tag)"))


def stored(database: Path) -> list[Any]:
    store = CorrectionStore(database)
    try:
        return list(store.corrections("en-ner", conflicts="all"))
    finally:
        store.close()


def test_a_person_corrects_the_entities_and_the_correction_is_in_the_database(
    browser: Any, base: str, database: Path
) -> None:
    open_page(browser, base)
    wait_for(browser, "return !document.getElementById('correct').hidden")
    by_id(browser, "correct").click()
    assert tags_shown(browser) == SERVED

    click_token(browser, 1)  # "Cook": the whole entity "Tim Cook" is selected
    assert browser.execute_script("return [...document.querySelectorAll('#editor .tk.sel')].length") == 2
    by_id(browser, "shrink-right").click()  # "Tim" alone
    assert tags_shown(browser)[:2] == ["B-PER", "O"]
    by_id(browser, "extend-right").click()  # "Tim Cook" again
    assert tags_shown(browser)[:2] == ["B-PER", "I-PER"]

    click_token(browser, 4)  # "Apple" (ORG) ...
    by_id(browser, "extend-right").click()  # ... "Apple store" ...
    pick(browser, "LOC")  # ... relabelled a place
    click_token(browser, 7)  # "Berlin"
    by_id(browser, "remove").click()
    assert tags_shown(browser)[7] == "O"
    click_token(browser, 7)  # and added back, by hand
    pick(browser, "LOC")
    wanted = ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O", "B-LOC", "O", "O", "O"]
    assert tags_shown(browser) == wanted
    assert browser.execute_script("return [...document.querySelectorAll('#editor .tk.changed')].length") == 2

    by_id(browser, "corrected-by").send_keys("a tester")
    by_id(browser, "submit-correction").click()
    status = wait_for(
        browser,
        "return document.getElementById('correct-status').dataset.id && "
        "document.getElementById('correct-status').textContent",
    )
    assert status.startswith("Stored as correction") and "2 tags changed" in status

    (correction,) = [s.correction for s in stored(database) if s.correction.corrected_by == "a tester"]
    assert list(correction.tags) == wanted and correction.text == EXAMPLE
    assert correction.tokens[4:6] == ("Apple", "store") and correction.offsets is not None
    assert correction.offsets[4] == (21, 26) and list(correction.served_tags or ()) == SERVED


def test_a_sentence_from_the_review_queue_is_corrected_and_leaves_it(browser: Any, base: str, database: Path) -> None:
    open_page(browser, base)  # the example, tagged on arrival, is kept for review (TAGGER_REVIEW_SAMPLE=1)
    wait_for(browser, "return !document.getElementById('tabs').hidden")
    by_id(browser, "tab-review").click()
    find = (
        "const rows = [...document.querySelectorAll('#review-list li')].filter("
        f"li => li.querySelector('.rv-text').textContent === {EXAMPLE!r}); "
        "return rows.length && rows[0].querySelector('button').dataset.id"
    )
    for _ in range(50):  # the review writer keeps it within a second or so
        item = browser.execute_script(find)
        if item:
            break
        by_id(browser, "review-refresh").click()
        wait_for(browser, "return document.getElementById('review-status').textContent.includes('en-ner:')")
    assert item, "the example never reached the review queue"
    browser.execute_script(f"document.querySelector('#review-list button[data-id=\"{item}\"]').click()")
    assert by_id(browser, "correct-title").text == f"Correct review item {item} (en-ner)"
    click_token(browser, 4)
    by_id(browser, "remove").click()  # "Apple" was the shop's brand here, not the firm
    by_id(browser, "submit-correction").click()
    wait_for(browser, "return document.getElementById('correct-status').dataset.id")

    answered = [s.correction for s in stored(database) if s.correction.review_id == int(item)]
    assert len(answered) == 1 and answered[0].tags[4] == "O"
    by_id(browser, "tab-review").click()
    wait_for(browser, "return document.getElementById('review-status').textContent.includes('en-ner:')")
    listed = "return [...document.querySelectorAll('#review-list button')].map(b => b.dataset.id)"
    assert item not in browser.execute_script(listed)  # answered: no longer in the queue
