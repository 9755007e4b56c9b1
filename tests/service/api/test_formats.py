"""Answers in the formats NLP tools speak (CoNLL-U, displaCy) and CoNLL-U documents as input, on the shipped
models: the same tags as the json answer, and a CoNLL-U document comes back with only its tag column changed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tagger.conllu import parse
from tests.conftest import EWT, ROOT, need
from tests.helpers import ready_client

TEXT = "Tim Cook visited the Apple store in Berlin on Monday."
SPACY_PYTHON = os.environ.get("TAGGER_SPACY_PYTHON") or str(ROOT / ".venv-spacy" / "bin" / "python")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    client: TestClient = ready_client(
        Settings(inference_process=False, warmup=False, max_sentences=300, max_text_chars=400)
    )
    yield client
    client.__exit__(None, None, None)


def tag(client: TestClient, model: str, body: dict[str, Any]) -> Any:
    response = client.post(f"/v1/models/{model}/tag", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def word_lines(document: str) -> list[list[str]]:
    return [line.split("\t") for line in document.splitlines() if line[:1].isdigit() and "\t" in line]


@pytest.mark.parametrize("model", ["en-ner", "en-upos"])
def test_conllu_answer_has_the_json_answers_tags(client: TestClient, model: str) -> None:
    texts = [TEXT, "   ", "I don't like green eggs."]
    (first, _, third) = tag(client, model, {"texts": texts})["results"]
    answer = tag(client, model, {"texts": texts, "format": "conllu"})
    assert answer["format"] == "conllu" and answer["model"] == model and len(answer["version"]) == 12
    document = answer["conllu"]
    assert document.startswith(f"# sent_id = 1\n# text = {TEXT}\n1\tTim\t")
    assert "# sent_id = 3\n# text = I don't like green eggs.\n" in document  # the blank text keeps its number
    words = word_lines(document)
    assert [w[1] for w in words] == first["tokens"] + third["tokens"]
    tags = [w[9].split("|")[0].removeprefix("NER=") for w in words] if model == "en-ner" else [w[3] for w in words]
    assert tags == first["tags"] + third["tags"]
    assert words[9][9].endswith("SpaceAfter=No") and words[10][1] == "."  # "Monday." touches


def test_displacy_entities_point_at_the_spans_text(client: TestClient) -> None:
    spans = tag(client, "en-ner", {"texts": [TEXT]})["results"][0]["spans"]
    answer = tag(client, "en-ner", {"texts": [TEXT], "format": "displacy"})
    assert answer["style"] == "ent"
    (doc,) = answer["results"]
    assert doc["text"] == TEXT and doc["title"] is None
    assert [(TEXT[e["start"] : e["end"]], e["label"]) for e in doc["ents"]] == [(s["text"], s["label"]) for s in spans]
    assert ("Berlin", "LOC") in [(TEXT[e["start"] : e["end"]], e["label"]) for e in doc["ents"]]


def test_displacy_for_pre_tokenized_input_joins_the_tokens_with_spaces(client: TestClient) -> None:
    (doc,) = tag(client, "en-ner", {"sentences": [["Tim", "Cook", "visited", "Berlin", "."]], "format": "displacy"})[
        "results"
    ]
    assert doc["text"] == "Tim Cook visited Berlin ."
    assert [(doc["text"][e["start"] : e["end"]], e["label"]) for e in doc["ents"]] == [
        ("Tim Cook", "PER"),
        ("Berlin", "LOC"),
    ]


def test_displacy_for_a_tag_model_is_words_with_their_tags(client: TestClient) -> None:
    tokens = ["The", "cat", "sat", "."]
    json_tags = tag(client, "en-upos", {"sentences": [tokens]})["results"][0]["tags"]
    answer = tag(client, "en-upos", {"sentences": [tokens], "format": "displacy"})
    assert answer["style"] == "dep"
    assert answer["results"] == [
        {"words": [{"text": t, "tag": g} for t, g in zip(tokens, json_tags, strict=True)], "arcs": [], "title": None}
    ]


def ewt_document(sentences: int) -> str:
    """The first sentences of EWT dev as they are in the file: comments, ranges (can't), empty nodes (8.1)."""
    blocks = need(EWT / "en_ewt-ud-dev.conllu").read_text(encoding="utf-8").split("\n\n")[:sentences]
    return "\n\n".join(blocks) + "\n\n"


@pytest.mark.data
@pytest.mark.parametrize("model", ["en-ner", "en-upos"])
def test_a_conllu_document_comes_back_with_only_the_tag_column_filled(client: TestClient, model: str) -> None:
    document = ewt_document(250)
    assert "\n8.1\t" in document and re.search(r"\n\d+-\d+\t", document)  # an empty node and a range
    answer = tag(client, model, {"conllu": document})
    assert answer["format"] == "conllu"
    out, before = answer["conllu"].split("\n"), document.split("\n")
    assert len(out) == len(before)
    column = 9 if model == "en-ner" else 3
    tags: list[str] = []
    for new, old in zip(out, before, strict=True):
        fields, old_fields = new.split("\t"), old.split("\t")
        if len(fields) == 10 and fields[0].isdigit():
            tags.append(fields[column].split("|")[-1].removeprefix("NER="))
            if model == "en-ner":  # MISC keeps its entries, NER= added last
                assert fields[:9] == old_fields[:9] and fields[9].split("|")[:-1] == [
                    e for e in old_fields[9].split("|") if e != "_"
                ]
            else:
                assert fields[:3] + fields[4:] == old_fields[:3] + old_fields[4:]
        else:
            assert new == old  # every line that is not a tag, as it came
    sentences = [list(s.forms) for s in parse(document).sentences]
    results = tag(client, model, {"sentences": sentences})["results"]
    assert tags == [t for r in results for t in r["tags"]]


def test_a_conllu_document_can_be_answered_as_json(client: TestClient) -> None:
    document = "1\tBerlin\t_\t_\t_\t_\t_\t_\t_\t_\n2\tcalls\t_\t_\t_\t_\t_\t_\t_\t_\n\n"
    (result,) = tag(client, "en-ner", {"conllu": document, "format": "json", "scores": True})["results"]
    assert result["tokens"] == ["Berlin", "calls"] and len(result["scores"]) == 2


def refusal(client: TestClient, body: dict[str, Any], status: int = 422) -> dict[str, Any]:
    headers = {"content-type": "application/json"}  # json.dumps escapes a lone surrogate as JSON allows
    response = client.post("/v1/models/en-upos/tag", content=json.dumps(body), headers=headers)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def row(ident: str, form: str) -> str:
    return "\t".join([ident, form, *["_"] * 8])


@pytest.mark.parametrize(
    ("document", "reason", "line", "words"),
    [
        ("1\tHi\t_\n", "invalid_conllu", 1, "conllu line 1: a word line has 10 tab-separated columns"),
        (f"{row('1', 'a')}\n{row('2', 'b')}\n{row('4', 'c')}\n", "invalid_conllu", 3, "word ID 4 where 3"),
        ("# nothing\n", "invalid_conllu", 1, "no word lines"),
        (f"{row('1', 'a')}\n\n{row('1', 'x' * 1001)}\n", "too_many_characters", 3, "FORM has 1001 characters"),
        (
            "\n".join(row(str(i), "w") for i in range(1, 514)) + "\n",
            "too_many_tokens",
            1,
            "conllu line 1: the sentence has 513 words; the limit is 512 (TAGGER_MAX_TOKENS)",
        ),
        (
            "# c\n" + row("1", "a") + "\n" + row("2", "b\ud800") + "\n",
            "invalid_unicode",
            3,
            "conllu line 3 holds a lone",
        ),
    ],
)
def test_a_bad_conllu_document_is_a_422_naming_its_line(
    client: TestClient, document: str, reason: str, line: int, words: str
) -> None:
    error = refusal(client, {"conllu": document})
    assert (error["reason"], error["field"], error["line"]) == (reason, "conllu", line)
    assert words in error["message"]


def test_too_many_conllu_sentences_is_refused_with_the_limit(client: TestClient) -> None:
    document = "".join(f"{row('1', 'w')}\n\n" for _ in range(301))
    error = refusal(client, {"conllu": document})
    assert error["message"] == "conllu has 301 sentences; the limit is 300 (TAGGER_MAX_SENTENCES)"


def test_scores_and_top_k_are_json_only(client: TestClient) -> None:
    error = refusal(client, {"texts": ["x"], "format": "displacy", "top_k": 2})
    assert error["field"] == "top_k" and "json format only" in error["message"]
    error = refusal(client, {"conllu": row("1", "x") + "\n", "scores": True})
    assert error["field"] == "scores" and "'conllu'" in error["message"]


def test_one_input_kind_at_a_time_and_a_known_format(client: TestClient) -> None:
    error = refusal(client, {"texts": ["x"], "conllu": row("1", "x") + "\n"})
    assert "exactly one of 'sentences'" in error["message"] and "'conllu'" in error["message"]
    error = refusal(client, {"texts": ["x"], "format": "xml"})
    assert error["field"] == "format"


RENDER = """
import json, sys
from spacy import displacy
answer = json.load(sys.stdin)
print(displacy.render(answer["results"], style=answer["style"], manual=True, page=False, jupyter=False))
"""


@pytest.mark.skipif(not Path(SPACY_PYTHON).is_file(), reason="no spaCy venv (.ci/run makes .venv-spacy)")
@pytest.mark.parametrize("model", ["en-ner", "en-upos"])
def test_spacys_own_displacy_renders_the_displacy_answer(client: TestClient, model: str) -> None:
    answer = tag(client, model, {"texts": [TEXT, "Bob left."], "format": "displacy"})
    html = subprocess.run(
        [SPACY_PYTHON, "-c", RENDER], input=json.dumps(answer), capture_output=True, text=True, check=True
    ).stdout
    if model == "en-ner":  # one <mark> per entity, its text and label inside
        marks = re.findall(r"<mark.*?</mark>", html, flags=re.S)
        assert len(marks) == sum(len(r["ents"]) for r in answer["results"]) >= 3
        assert any("Tim Cook" in m and "PER" in m for m in marks) and any("Berlin" in m and "LOC" in m for m in marks)
    else:  # one drawing per text, each word with its tag
        assert html.count("<svg") == 2 and "visited" in html and "PROPN" in html
