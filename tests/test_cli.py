"""The `tagger` command, run as a user would: evaluate and predict on checkpoints and exports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from tagger.readers import read_columns, read_conllu

pytestmark = pytest.mark.trains


def test_evaluate_json_on_an_export_and_its_checkpoint_agree(
    tiny_run: Path, tiny_export: Path, tiny_config, capsys: pytest.CaptureFixture[str]
) -> None:
    results = []
    for model in (tiny_export, tiny_run):
        assert main(["evaluate", str(model), tiny_config.data.dev, "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    on_export, on_checkpoint = results
    assert {"accuracy", "tokens", "sentences", "per_tag", "confusions", "words_per_second"} <= set(on_export)
    assert on_export["sentences"] == 120
    assert on_export["accuracy"] == on_checkpoint["accuracy"]


def test_evaluate_prints_a_readable_report(tiny_export: Path, tiny_config, capsys) -> None:
    assert main(["evaluate", str(tiny_export), tiny_config.data.dev]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "words/s" in out and "NOUN" in out


def test_predict_writes_conll_with_one_tag_per_token(tiny_export: Path, tiny_config, tmp_path: Path) -> None:
    tokens = tmp_path / "input.txt"
    tokens.write_text("The cat sat on the mat .\nHello world\n", encoding="utf-8")
    out = tmp_path / "tagged.conll"
    assert main(["predict", str(tiny_export), str(tokens), "--output", str(out)]) == 0
    tagged = read_columns(out)
    assert [s.tokens for s in tagged] == [("The", "cat", "sat", "on", "the", "mat", "."), ("Hello", "world")]
    assert all(len(s.tags) == len(s.tokens) for s in tagged)
    known = {tag for s in read_conllu(tiny_config.data.train) for tag in s.tags}
    assert {tag for s in tagged for tag in s.tags} <= known


def test_a_malformed_file_is_a_clear_error_not_a_traceback(tiny_export: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tThe\tthe\tDET\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "cli", "evaluate", str(tiny_export), str(bad)], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "bad.conllu:1" in run.stderr and "Traceback" not in run.stderr


def test_train_from_the_command_line_with_overrides(tiny_config, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli-run"
    argv = ["train", "--out", str(out), "--data.train", tiny_config.data.train, "--data.dev", tiny_config.data.dev]
    argv += ["--model.glove", "false", "--model.hidden", "8", "--model.word_dim", "8", "--train.epochs", "1"]
    argv += ["--train.max_sentences", "50"]
    assert main(argv) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["hidden"] == 8 and saved["train"]["epochs"] == 1


def test_a_bad_override_names_the_field(tiny_config, tmp_path: Path, capsys) -> None:
    argv = ["train", "--out", str(tmp_path), "--data.train", tiny_config.data.train, "--data.dev", tiny_config.data.dev]
    assert main([*argv, "--train.epochs", "many"]) == 2
    assert "TrainConfig.epochs must be int, got 'many'" in capsys.readouterr().err
