"""`tagger corrections MODEL`: the corrections database exported as the files `tagger train` and `tagger finetune`
read, written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from service.corrections.records import Correction
from service.corrections.store import CorrectionStore
from service.corrections.validation import TagRules
from tagger.readers import read_tagged

NER = TagRules(("B-PER", "I-PER", "B-LOC", "O"), "IOB2", max_tokens=100)


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = str(tmp_path / "corrections.db")
    store = CorrectionStore(url)
    store.add_corrections(
        [
            Correction("en-ner", ("Ada", "Lovelace", "lived", "in", "London"), ("B-PER", "I-PER", "O", "O", "B-LOC")),
            Correction("en-ner", ("Hi", "Bob"), ("O", "B-PER")),
            Correction("en-ner", ("Hi", "Bob"), ("O", "O")),  # disagrees: the newest wins by default
            Correction("other", ("x",), ("O",)),
        ],
        NER,
    )
    store.close()
    return url


def test_the_export_reads_back_as_training_data(database: str, tmp_path: Path) -> None:
    out = tmp_path / "corrections.iob2"
    assert main(["corrections", "en-ner", "--db", database, "--output", str(out)]) == 0
    sentences = read_tagged(out, "auto")
    assert [list(s.tags) for s in sentences] == [["B-PER", "I-PER", "O", "O", "B-LOC"], ["O", "O"]]
    assert not out.with_name(out.name + ".partial").exists()


def test_conflicts_and_conllu(database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["corrections", "en-ner", "--db", database, "--format", "conllu", "--conflicts", "all"]) == 0
    printed = capsys.readouterr()
    assert printed.out.count("# conflict = yes") == 2 and "NER=B-LOC" in printed.out
    assert "3 corrections of en-ner as conllu" in printed.err


def test_the_database_comes_from_the_environment_or_is_asked_for(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TAGGER_CORRECTIONS_DB", raising=False)
    assert main(["corrections", "en-ner"]) == 2
    assert "--db or TAGGER_CORRECTIONS_DB" in capsys.readouterr().err
    monkeypatch.setenv("TAGGER_CORRECTIONS_DB", database)
    assert main(["corrections", "en-ner"]) == 0
    assert "London\tB-LOC" in capsys.readouterr().out


def test_a_database_that_is_down_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "corrections.iob2"
    url = "postgresql://tagger@127.0.0.1:9/none"
    assert main(["corrections", "en-ner", "--db", url, "--output", str(out)]) == 1
    assert "unavailable" in capsys.readouterr().err and not out.exists()
    assert list(tmp_path.iterdir()) == []
