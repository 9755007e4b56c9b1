"""The `tagger` command, run as a user would: evaluate and predict on checkpoints and exports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from tagger.readers import read_columns, read_conllu
from tests.conftest import ROOT

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


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["predict", "exports/nope", "x.txt"], "exports/nope: no such file or folder"),
        (["predict", "deploy", "x.txt"], "deploy is a folder with neither metadata.json nor best.pt"),
        (["evaluate", "README.md", "data"], "README.md is not a model"),
    ],
)
@pytest.mark.parametrize("torch_installed", [True, False], ids=["with torch", "serving install"])
def test_a_path_that_is_not_a_model_is_one_line_naming_it(argv: list[str], says: str, torch_installed: bool) -> None:
    block = "" if torch_installed else "sys.modules['torch'] = None; "  # `import torch` fails, as without it
    code = f"import sys; {block}from cli.main import main; sys.exit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "metadata.json" in lines[0], done.stderr


def test_a_checkpoint_without_torch_says_what_to_install(tiny_run: Path) -> None:
    argv = ["evaluate", str(tiny_run), "x"]
    code = f"import sys; sys.modules['torch'] = None; from cli.main import main; sys.exit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode != 0 and "pip install -e '.[train]'" in done.stderr and len(done.stderr.splitlines()) == 1


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"not a checkpoint")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "evaluate", str(fake), "x"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 2 and "cannot be read as a checkpoint" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_data_and_model_that_share_no_tag_are_refused_naming_both(tiny_export: Path, tmp_path: Path) -> None:
    ner = tmp_path / "ner.conll"
    ner.write_text("Ann\tB-PER\nleft\tO\n\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "evaluate", str(tiny_export), str(ner)], capture_output=True, text=True, cwd=ROOT
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1
    assert "share no tag" in lines[0] and "B-PER" in lines[0] and "NOUN" in lines[0]


def test_gold_tags_the_model_cannot_produce_are_counted_in_a_warning(tiny_export: Path, tmp_path: Path) -> None:
    upos = tmp_path / "odd.conll"
    upos.write_text("The\tDET\ncat\tNOUN\nmeowed\tMEOW\n\ndogs\tMEOW\n\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "evaluate", str(tiny_export), str(upos), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0 and json.loads(done.stdout)["tokens"] == 4
    assert "warning: 2 gold tokens carry tags" in done.stderr and "MEOW" in done.stderr


def test_train_help_describes_every_override_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    shown = capsys.readouterr().out
    flags = [line.split()[0] for line in shown.splitlines() if line.strip().startswith("--") and "." in line.split()[0]]
    assert len(flags) >= 40
    assert "--train.lowercase V" in shown and "default 0.0" in shown
    assert "most frequent GloVe words kept beyond the training" in shown  # a field's comment is its help
    assert shown.count("default") >= len(flags)  # each flag says its default (argparse may wrap before it)


def test_a_bad_flag_after_a_subcommand_prints_that_subcommands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["evaluate", "exports/en-upos", "x", "--bogus"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: tagger evaluate") and "unrecognized arguments: --bogus" in err


def predict(*argv: str, stdin: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "predict", *argv], input=stdin, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_predict_tokenizes_raw_text_as_the_service_does() -> None:
    text = "I don't like green eggs.\n\nSam-I-am said so!\n"
    out = predict("exports/en-upos", "-", "--input", "text", stdin=text)
    sentences = [block.splitlines() for block in out.strip().split("\n\n")]
    assert [line.split("\t")[0] for line in sentences[0]] == ["I", "do", "n't", "like", "green", "eggs", "."]
    assert len(sentences) == 2 and all(len(line.split("\t")) == 2 for s in sentences for line in s)
    as_tokens = predict("exports/en-upos", "-", "--input", "tokens", stdin=text)  # today's behaviour: spaces only
    assert "eggs.\t" in as_tokens and "don't\t" in as_tokens


def test_predict_writes_json_lines_with_offsets_and_spans() -> None:
    text = "Angela Merkel visited Paris.\nNo names here.\n"
    lines = [
        json.loads(line)
        for line in predict(
            "exports/en-ner", "-", "--input", "text", "--output-format", "jsonl", stdin=text
        ).splitlines()
    ]
    first = lines[0]
    assert [first["text"][a:b] for a, b in first["offsets"]] == first["tokens"]
    assert [(s["text"], s["label"]) for s in first["spans"]] == [("Angela Merkel", "PER"), ("Paris", "LOC")]
    assert lines[1]["spans"] == []


def test_predict_writes_conllu_with_the_text_and_space_after() -> None:
    out = predict("exports/en-ner", "-", "--input", "text", "--output-format", "conllu", stdin="Paris is big.\n")
    lines = out.strip().splitlines()
    assert lines[:2] == ["# sent_id = 1", "# text = Paris is big."]
    rows = [line.split("\t") for line in lines[2:]]
    assert all(len(row) == 10 for row in rows) and rows[0][9] == "NER=B-LOC" and rows[2][9] == "NER=O|SpaceAfter=No"
    upos = predict("exports/en-upos", "-", "--input", "text", "--output-format", "conllu", stdin="Paris is big.\n")
    assert upos.splitlines()[2].split("\t")[3] == "PROPN"  # plain tags go in the UPOS column
