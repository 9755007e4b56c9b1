"""`tagger finetune` on the tiny model: corrections round-trip through the store's export into a new export,
and a fine-tune that costs the original test set more than --max-drop writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from service.corrections.records import Correction
from service.corrections.store import CorrectionStore
from service.corrections.validation import TagRules
from tagger.artifact import METADATA_FILE, MODEL_FILE
from tagger.readers import Sentence, read_conllu
from tagger.runtime import load_runtime
from tests.conftest import EWT, need

pytestmark = pytest.mark.trains


def exported_corrections(folder: Path, sentences: list[Sentence], tags: tuple[str, ...]) -> Path:
    """The sentences stored as corrections of the tiny model and exported as CoNLL-U, as a user would get them."""
    store = CorrectionStore(folder / "corrections.db")
    rules = TagRules(tags, None, max_tokens=1000)
    store.add_corrections([Correction("tiny", s.tokens, s.tags) for s in sentences], rules)
    path = folder / "corrections.conllu"
    with path.open("w", encoding="utf-8") as out:
        out.writelines(store.export("tiny", "conllu"))
    store.close()
    return path


@pytest.fixture(scope="module")
def unseen() -> list[Sentence]:
    """EWT dev sentences the tiny model neither trained on nor picked its epoch with."""
    return read_conllu(need(EWT / "en_ewt-ud-dev.conllu"))[300:360]


def test_finetune_writes_a_new_version_into_the_models_folder(
    tiny_run: Path, tiny_export: Path, unseen: list[Sentence], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tags = tuple(load_runtime(tiny_export).decoder.output_tags)
    corrections = exported_corrections(tmp_path, unseen, tags)
    models, run = tmp_path / "models", tmp_path / "run"
    argv = ["finetune", str(tiny_run), str(corrections), "--models", str(models), "--name", "tiny"]
    assert main([*argv, "--run", str(run), "--epochs", "2", "--max-drop", "100"]) == 0
    printed = capsys.readouterr().out
    stored = len(set(unseen))  # the store keeps a sentence repeated with the same tags once
    assert f"trained on {stored - round(0.2 * stored)} corrections, held out {round(0.2 * stored)}," in printed
    assert "held-out corrections: " in printed and "original test set: " in printed
    new = models / "tiny"
    assert json.loads((new / METADATA_FILE).read_text())["name"] == "tiny"
    assert (new / MODEL_FILE).read_bytes() != (tiny_export / MODEL_FILE).read_bytes()  # a new version
    load_runtime(new)  # verified and loadable, as the live swap loads it
    record = json.loads((run / "finetune.json").read_text())
    assert record["refused"] is None and set(record["scores"]) == {"held-out corrections", "original test set"}
    assert (run / "best.pt").is_file()  # so it can be fine-tuned again


def test_finetune_refuses_to_write_a_model_worse_on_the_original_test_set(
    tiny_run: Path, tiny_export: Path, unseen: list[Sentence], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tags = tuple(load_runtime(tiny_export).decoder.output_tags)
    wrong = [Sentence(s.tokens, ("PUNCT",) * len(s.tokens)) for s in unseen]  # every word PUNCT: corrections gone bad
    corrections = exported_corrections(tmp_path, wrong, tags)
    models, run = tmp_path / "models", tmp_path / "run"
    argv = ["finetune", str(tiny_run), str(corrections), "--models", str(models), "--run", str(run)]
    status = main([*argv, "--lr", "0.01", "--original-weight", "0", "--epochs", "3", "--max-drop", "1.0"])
    printed = capsys.readouterr().out
    assert status == 1
    assert (
        "refused, nothing written: the original test set fell by" in printed and "more than --max-drop 1.00" in printed
    )
    assert not models.exists() and not (run / "best.pt").exists()
    assert json.loads((run / "finetune.json").read_text())["refused"].startswith("the original test set fell")


def test_an_export_folder_alone_is_not_enough_to_start_from(tiny_export: Path, tmp_path: Path) -> None:
    corrections = tmp_path / "c.iob2"
    corrections.write_text("Hi\tINTJ\n\n", encoding="utf-8")
    from model.finetune import FinetuneOptions, finetune

    with pytest.raises(ValueError, match=r"export folder: .*pass the run folder"):
        finetune(tiny_export, corrections, tmp_path / "run", None, FinetuneOptions(), "float32")
