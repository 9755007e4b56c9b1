"""Offsets and spans checked against the text itself, not against another answer of the same code.

The fast-path and /v1-against-/v2 comparisons build both sides with the same code, so an offset one off
passes them all. Here the reference is independent: the text sliced at each returned offset is the token, a
span's characters slice to its text and start and end where its first and last tokens do, its tokens carry
its label in the tag scheme, displaCy's entities slice to the same texts, and /v2's offsets tensor is /v1's.
Against a real `tagger serve` on the shipped models (en-ner decodes in BIOES and answers in IOB2).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.helpers import free_port, post, start_server, wait_ready

pytestmark = pytest.mark.server

TEXTS = [
    "Tim Cook  visited Paris, France on Monday.\nAngela Merkel met Emmanuel Macron in Berlin",
    "\u00a0😀 Barack Obama was born in Honolulu, Hawaii, and worked for the University of Chicago.",
    "Der Präsident of Microsoft, Satya Nadella, spoke at the United Nations in New York",
    "   ",
    "Google",
]


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    port = free_port()
    process: subprocess.Popen[str] = start_server(ROOT / "exports", port, TAGGER_DEFAULT_MODEL="en-upos")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, seconds=120)
        yield url
    finally:
        process.kill()
        process.wait(10)


def tag(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = post(f"{base}{path}", body)
    assert status == 200, answer
    return dict(json.loads(answer))


def check_offsets(text: str, result: dict[str, Any]) -> None:
    offsets = result["offsets"]
    assert len(offsets) == len(result["tokens"]) == len(result["tags"])
    for token, (start, end) in zip(result["tokens"], offsets, strict=True):
        assert text[start:end] == token, (token, start, end)
    ends = [0] + [end for _, end in offsets]
    assert all(start >= before for (start, _), before in zip(offsets, ends, strict=False))  # in order, apart
    gaps = [text[end:start] for end, (start, _) in zip(ends, offsets, strict=False)] + [text[ends[-1] :]]
    assert "".join(gaps).strip() == ""  # between tokens: spaces only


def check_span_tags(tags: list[str], span: dict[str, Any]) -> None:
    """A span's tokens carry its label as the answer's IOB2 tags write one entity: B, then I up to its end."""
    label, start, end = span["label"], span["start"], span["end"]
    assert 0 <= start < end <= len(tags)
    assert tags[start:end] == [f"B-{label}", *[f"I-{label}"] * (end - start - 1)], (span, tags[start:end])
    assert end == len(tags) or tags[end] != f"I-{label}", (span, tags[end])


def test_v1_offsets_slice_the_text_to_each_token(base: str) -> None:
    for path in ("/v1/tag", "/v1/models/en-upos/tag", "/v1/models/en-ner/tag"):
        for text, result in zip(TEXTS, tag(base, path, {"texts": TEXTS})["results"], strict=True):
            check_offsets(text, result)


def test_v1_spans_slice_to_their_text_and_match_their_tokens_and_tags(base: str) -> None:
    answer = tag(base, "/v1/models/en-ner/tag", {"texts": TEXTS, "scores": True})
    found = 0
    for text, result in zip(TEXTS, answer["results"], strict=True):
        offsets = result["offsets"]
        for span in result["spans"]:
            found += 1
            check_span_tags(result["tags"], span)
            assert span["start_char"] == offsets[span["start"]][0]
            assert span["end_char"] == offsets[span["end"] - 1][1]
            assert text[span["start_char"] : span["end_char"]] == span["text"]
        # and every entity the tags write is a span
        starts = [i for i, t in enumerate(result["tags"]) if t.startswith("B-")]
        assert starts == [span["start"] for span in result["spans"]]
    assert found >= 8, f"only {found} entities in texts written to have many"
    # tokens given: a span's text is its tokens joined by spaces, and it has no characters
    sentences = [r["tokens"] for r in answer["results"] if r["tokens"]]
    tagged = tag(base, "/v1/models/en-ner/tag", {"sentences": sentences})["results"]
    for tokens, result in zip(sentences, tagged, strict=True):
        for span in result["spans"]:
            check_span_tags(result["tags"], span)
            assert span["text"] == " ".join(tokens[span["start"] : span["end"]]) and "start_char" not in span


def test_displacy_entities_slice_the_text_to_the_json_answers_spans(base: str) -> None:
    spans = [r["spans"] for r in tag(base, "/v1/models/en-ner/tag", {"texts": TEXTS})["results"]]
    shown = tag(base, "/v1/models/en-ner/tag", {"texts": TEXTS, "format": "displacy"})["results"]
    for text, entities, page in zip(TEXTS, spans, shown, strict=True):
        assert page["text"] == text
        assert [(page["text"][e["start"] : e["end"]], e["label"]) for e in page["ents"]] == [
            (s["text"], s["label"]) for s in entities
        ]


def test_v2_offsets_and_spans_are_v1s_and_slice_the_text(base: str) -> None:
    v1 = tag(base, "/v1/models/en-ner/tag", {"texts": TEXTS})["results"]
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}]}
    outputs = {o["name"]: o for o in tag(base, "/v2/models/en-ner/infer", body)["outputs"]}
    n, width, _ = outputs["offsets"]["shape"]
    flat = outputs["offsets"]["data"]
    rows = [[flat[(i * width + j) * 2 : (i * width + j) * 2 + 2] for j in range(width)] for i in range(n)]
    for text, row, result, spans in zip(TEXTS, rows, v1, outputs["spans"]["data"], strict=True):
        given = [pair for pair in row if pair != [-1, -1]]
        assert given == result["offsets"] and row[len(given) :] == [[-1, -1]] * (width - len(given))
        assert [text[s:e] for s, e in given] == result["tokens"]
        assert json.loads(spans) == result["spans"]
        assert all(text[s["start_char"] : s["end_char"]] == s["text"] for s in json.loads(spans))
