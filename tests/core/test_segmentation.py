"""Segmentation: hard blank lines, the token-limit cut, windows over long text, exact offsets, the folder contract.

Most tests run the segmenting logic on a stand-in for the ONNX session that
says "a sentence ends here" at every full stop, so they pin `segment`'s own
behaviour whatever a trained model predicts; the shipped segmenter is tested
on a real EWT document and through its folder checks.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tagger.artifact import ArtifactError
from tagger.segmentation import (
    CHAR_CLASSES,
    LABELS,
    SEGMENTER_FILE,
    Manifest,
    Segmenter,
    Sentence,
    encode_chars,
    load_segmenter,
    paragraphs,
)
from tagger.tokenizer import tokenize
from tests.conftest import EWT, ROOT, need

SHIPPED = ROOT / "exports" / "segmenter-en-ewt"
STOP = CHAR_CLASSES.index("stop")
BRACKET = CHAR_CLASSES.index("bracket")


class StopSession:
    """Stands in for ONNX Runtime: S at every stop character (. ! ?), T elsewhere, but with S a close second
    at brackets (the likeliest place to cut a sentence that is too long); records the batches."""

    def __init__(self) -> None:
        self.batches: list[dict[str, np.ndarray]] = []

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.batches.append(feed)
        classes = feed["classes"]  # (B, T)
        scores = np.zeros((*classes.shape, len(LABELS)), dtype=np.float32)
        scores[:, :, LABELS.index("T")] = 1.0
        scores[:, :, LABELS.index("S")] = np.select([classes == STOP, classes == BRACKET], [2.0, 0.5], 0.0)
        return [scores]


def stop_segmenter(window: int = 512, context: int = 64) -> tuple[Segmenter, StopSession]:
    manifest = Manifest("stops", list(LABELS), window, context, {}, {}, {}, {}, "", {})
    session = StopSession()
    return Segmenter(manifest, {}, session), session  # type: ignore[arg-type]


def texts(text: str, sentences: list[Sentence]) -> list[str]:
    return [text[s.start : s.end] for s in sentences]


def test_sentences_end_where_the_model_says_and_at_the_end() -> None:
    segmenter, _ = stop_segmenter()
    text = "  The cat sat. It was happy!  And then  "
    assert texts(text, segmenter.segment(text)) == ["The cat sat.", "It was happy!", "And then"]


@pytest.mark.parametrize("text", ["", " ", "\n\n\t \u3000\n"])
def test_empty_and_whitespace_only_text_has_no_sentences(text: str) -> None:
    segmenter, session = stop_segmenter()
    assert segmenter.segment(text) == []
    assert session.batches == []  # the model is not even run


def test_blank_lines_are_hard_boundaries_and_number_the_paragraphs() -> None:
    segmenter, _ = stop_segmenter()
    text = "Title without a stop\n\nFirst line\nstill the same paragraph\n \t\nLast one. Two"
    found = segmenter.segment(text)
    assert texts(text, found) == ["Title without a stop", "First line\nstill the same paragraph", "Last one.", "Two"]
    assert [s.paragraph for s in found] == [0, 1, 2, 2]


def test_paragraph_blocks_split_on_blank_lines_of_any_whitespace() -> None:
    text = "a\r\n\r\nb\n  \n\nc\u2029d\fe"
    assert [text[a:b] for a, b in paragraphs(text)] == ["a", "b", "c", "d", "e"]


def test_a_sentence_is_cut_before_the_token_limit_at_its_likeliest_end() -> None:
    segmenter, _ = stop_segmenter()
    words = [f"w{i}" for i in range(25)]
    words[2] += ")"  # likely, but in the first half of the allowed tokens: too early to cut there
    words[6] += ")"  # the likeliest end among tokens 5..10: the first cut goes after it
    words[14] = "x(y"  # inside a token, not a token's end: never a cut
    text = " ".join(words)
    found = segmenter.segment(text, max_tokens=10)
    assert texts(text, found)[0] == " ".join(words[:7])
    assert all(len(tokenize(text[s.start : s.end])) <= 10 for s in found)
    assert "".join(texts(text, found)).replace(" ", "") == text.replace(" ", "")  # nothing lost or repeated


def test_long_text_without_punctuation_is_windowed_and_cut_by_the_limit() -> None:
    segmenter, session = stop_segmenter(window=100, context=10)
    text = " ".join(f"word{i % 50}" for i in range(20_000))  # ~130k characters, no stop, no blank line
    found = segmenter.segment(text, max_tokens=512)
    assert max(len(tokenize(text[s.start : s.end])) for s in found) <= 512
    assert sum(len(tokenize(text[s.start : s.end])) for s in found) == 20_000
    assert all(a.end < b.start for a, b in itertools.pairwise(found))
    assert max(feed["chars"].shape[1] for feed in session.batches) <= 120  # window + context on both sides


def test_windows_label_every_character_once_as_a_single_read_would() -> None:
    segmenter, _ = stop_segmenter(window=7, context=3)
    whole, _ = stop_segmenter(window=10_000, context=0)
    text = "One. Two three. Four five six. " * 40
    assert np.array_equal(segmenter.sentence_end_scores(text), whole.sentence_end_scores(text))
    assert segmenter.segment(text) == whole.segment(text)


def test_token_limit_must_be_positive() -> None:
    segmenter, _ = stop_segmenter()
    with pytest.raises(ValueError, match="max_tokens"):
        segmenter.segment("text", max_tokens=0)


def test_characters_are_encoded_by_inventory_and_class() -> None:
    ids, classes = encode_chars("aZ.\n ?é", {"a": 2, ".": 3})
    assert ids.tolist() == [2, 1, 3, 1, 1, 1, 1]
    assert [CHAR_CLASSES[c] for c in classes] == ["lower", "upper", "stop", "newline", "space", "stop", "lower"]


# --- the shipped segmenter ---------------------------------------------------


def shipped() -> Segmenter:
    if not SHIPPED.is_dir():
        pytest.fail(f"{SHIPPED} is missing: export it with `python -m model.segmenter export` (see its README line)")
    return load_segmenter(SHIPPED)


@pytest.mark.data
def test_offsets_are_exact_on_a_real_ewt_document() -> None:
    from model.segmenter_data import documents, gold_document, read_gold

    doc = documents(read_gold(need(EWT / "en_ewt-ud-dev.conllu")))[3]
    text, gold = gold_document(doc)
    found = shipped().segment(text, max_tokens=512)
    assert found and all(text[s.start : s.end] == text[s.start : s.end].strip() != "" for s in found)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))
    # every non-space character is in exactly one sentence
    covered = "".join(text[s.start : s.end] for s in found)
    assert "".join(covered.split()) == "".join(text.split())
    # and most gold sentences are found exactly (dev F1 is about 0.9)
    assert len({(s.start, s.end) for s in found} & set(gold)) >= 0.7 * len(gold)


def test_the_shipped_segmenter_splits_the_issue_example() -> None:
    text = "The cat sat on the mat. It was happy."
    assert texts(text, shipped().segment(text)) == ["The cat sat on the mat.", "It was happy."]


def test_a_changed_file_or_unknown_version_is_refused(tmp_path: Path) -> None:
    shipped()
    folder = tmp_path / "seg"
    shutil.copytree(SHIPPED, folder)
    with open(folder / "chars.json", "a", encoding="utf-8") as f:
        f.write(" ")
    with pytest.raises(ArtifactError, match=r"chars\.json: sha256"):
        load_segmenter(folder)
    manifest: dict[str, Any] = json.loads((folder / SEGMENTER_FILE).read_text(encoding="utf-8"))
    (folder / SEGMENTER_FILE).write_text(json.dumps(manifest | {"format_version": 99}), encoding="utf-8")
    with pytest.raises(ArtifactError, match="format_version 99"):
        load_segmenter(folder)
