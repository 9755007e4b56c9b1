"""benchmarks/raw_text.py writes CoNLL-U the official CoNLL 2018 scorer accepts: range lines, a flat tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.raw_text import EVAL, SystemSentence, conllu_lines, score
from model.segmenter_data import documents, gold_document, read_gold
from tagger.tokenizer import multiword_ranges, tokenize
from tests.conftest import EWT, need


def sentence(text: str) -> SystemSentence:
    tokens = tokenize(text)
    return SystemSentence(0, 0, text, tokens, multiword_ranges(tokens))


def test_a_split_word_gets_its_range_line_and_the_tree_is_flat() -> None:
    lines = conllu_lines(sentence("I don't know."), ["PRON", "AUX", "PART", "VERB", "PUNCT"], 7)
    assert lines[:2] == ["# sent_id = 7", "# text = I don't know."]
    rows = [line.split("\t") for line in lines[2:]]
    assert all(len(row) == 10 for row in rows)
    assert [row[0] for row in rows] == ["1", "2-3", "2", "3", "4", "5"]
    assert rows[1][1] == "don't" and rows[1][9] == "_"  # the range carries SpaceAfter; a space follows
    assert [(row[6], row[7]) for row in rows if "-" not in row[0]] == [("0", "root")] + [("1", "dep")] * 4
    assert rows[4][9] == "SpaceAfter=No"  # `know` is glued to `.`


def test_line_breaks_in_the_text_comment_become_spaces() -> None:
    assert conllu_lines(sentence("a\nb"), ["X", "X"], 1)[1] == "# text = a b"


@pytest.mark.data
def test_the_official_scorer_accepts_the_output(tmp_path: Path) -> None:
    need(EVAL)
    gold_path = need(EWT / "en_ewt-ud-dev.conllu")
    blocks = gold_path.read_text(encoding="utf-8").split("\n\n")[:60]
    gold = tmp_path / "gold.conllu"
    gold.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    lines: list[str] = []
    for doc in documents(read_gold(gold)):
        text, spans = gold_document(doc)
        for a, b in spans:
            found = sentence(text[a:b])
            lines += [*conllu_lines(found, ["X"] * len(found.tokens), len(lines)), ""]
    system = tmp_path / "system.conllu"
    system.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scores = score(gold, system)
    assert scores["Sentences"] == 100.0
    assert scores["Tokens"] > 99.0  # the tokenizer's own errors only; multi-word tokens count as one
