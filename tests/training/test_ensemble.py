"""Ensembles: several trained CRF taggers exported as one graph that serves exactly like a single model."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from tagger.artifact import METADATA_FILE, MODEL_FILE
from tagger.runtime import load_runtime
from tests.synthetic import NAMES, ner_config

pytestmark = pytest.mark.trains

DIM = 50  # what GloVe 6B 50d gives, and so model.word_dim


def fake_glove(top_k: int) -> tuple[list[str], np.ndarray]:
    """A stand-in for GloVe: the fixture's names and some words training never sees, with fixed vectors."""
    words = sorted({w.lower() for names in NAMES.values() for n in names for w in n.split()})
    words += [f"unseen{i}" for i in range(40)]
    return words[:top_k], np.random.default_rng(0).normal(size=(len(words[:top_k]), DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two CRF taggers trained on the same CoNLL-2003-style files with different seeds, GloVe rows in 4 bits."""
    from model.train import train

    folder = tmp_path_factory.mktemp("ensemble")
    base = ner_config(folder, epochs=2)
    runs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("model.train.load_glove", fake_glove)
        for seed in (3, 4):
            config = dataclasses.replace(
                base,
                name=f"member{seed}",
                model=dataclasses.replace(base.model, glove=True, glove_int4=True, word_dim=DIM),
                train=dataclasses.replace(base.train, seed=seed),
            )
            train(config, folder / f"member{seed}")
            runs.append(folder / f"member{seed}")
    return runs


def test_ensemble_scores_are_the_mean_of_its_members(members: list[Path]) -> None:
    from model.checkpoint import load_checkpoint
    from model.data import read_split
    from model.ensemble import load_ensemble
    from model.predict import predict_scores

    loaded = load_ensemble(members)
    ensemble, configs, vocab = loaded.model, loaded.configs, loaded.vocab
    sentences = read_split(configs[0].data, configs[0].data.dev)
    singles = [predict_scores(load_checkpoint(m).model, vocab, sentences) for m in members]
    pooled = predict_scores(ensemble, vocab, sentences)
    for i, scores in enumerate(pooled):
        np.testing.assert_allclose(scores, (singles[0][i] + singles[1][i]) / 2, atol=1e-5)
    assert not np.allclose(singles[0][0], singles[1][0])  # the seeds made two different models


def test_the_pooled_model_decodes_the_sequence_the_members_agree_on_best(members: list[Path]) -> None:
    """Viterbi over mean emissions and the pooled crf.json = argmax over every tag sequence of the mean member score."""
    from model.checkpoint import decoder_of, load_checkpoint
    from model.ensemble import load_ensemble

    loaded = load_ensemble(members)
    ensemble, configs, vocab = loaded.model, loaded.configs, loaded.vocab
    singles = [load_checkpoint(m).model.crf for m in members]
    decoder = decoder_of(ensemble.crf, configs[0], vocab)
    k, length = len(vocab.tags), 3
    sequences = torch.tensor(list(itertools.product(range(k), repeat=length)))  # (k^3, 3)
    lengths = torch.full((len(sequences),), length)
    for seed in range(5):
        torch.manual_seed(seed)
        emissions = [torch.randn(length, k) * 3 for _ in members]  # each member scores the sentence its own way
        totals = [
            crf.sequence_score(e.expand(len(sequences), -1, -1), sequences, lengths)
            for crf, e in zip(singles, emissions, strict=True)
            if crf is not None
        ]
        best = sequences[torch.stack(totals).mean(dim=0).argmax()].numpy()
        decoded = decoder.decode(torch.stack(emissions).mean(dim=0).numpy())
        np.testing.assert_array_equal(decoded.ids, best)


def test_an_ensemble_exports_in_int8_and_serves_like_one_model(members: list[Path], tmp_path: Path) -> None:
    from model.export import export

    single = tmp_path / "single"
    export(members[0], single)
    parity = export(members, tmp_path / "pair", weights="int8")
    assert parity.tag_mismatches == 0 and parity.max_abs_diff < 1e-4

    graph = onnx.load(str(tmp_path / "pair" / MODEL_FILE)).graph
    codes = [i for i in graph.initializer if i.data_type == onnx.TensorProto.UINT8]
    assert len(codes) == 1  # the members' identical 4-bit GloVe rows, stored once
    # two members with int8 weights take less than one in float32
    pair_bytes, single_bytes = (tmp_path / "pair" / MODEL_FILE).stat().st_size, (single / MODEL_FILE).stat().st_size
    assert pair_bytes < 0.8 * single_bytes

    metadata = json.loads((tmp_path / "pair" / METADATA_FILE).read_text())
    assert [m["config"]["name"] for m in metadata["extra"]["ensemble"]] == ["member3", "member4"]
    assert metadata["extra"]["weights"] == "int8"
    assert metadata["decoder"] == "crf"
    # what the service loads: nothing there knows it is an ensemble, and it tags as the PyTorch ensemble does
    from model.checkpoint import decoder_of
    from model.data import read_split
    from model.ensemble import load_ensemble
    from model.predict import predict_scores
    from model.storage import round_weights

    loaded = load_ensemble(members)
    ensemble, configs, vocab = loaded.model, loaded.configs, loaded.vocab
    round_weights(ensemble, "int8")
    dev = read_split(configs[0].data, configs[0].data.dev)
    decoder = decoder_of(ensemble.crf, configs[0], vocab)
    expected = [decoder.decode(s).tags for s in predict_scores(ensemble, vocab, dev)]
    runtime = load_runtime(tmp_path / "pair")
    assert [d.tags for d in runtime.tag_sentences([s.tokens for s in dev])] == expected
    assert any(tag != "O" for tags in expected for tag in tags)


def test_members_with_other_vocabularies_are_refused_by_path(members: list[Path], tiny_run: Path) -> None:
    from model.ensemble import load_ensemble

    with pytest.raises(ValueError, match=rf"{re.escape(str(tiny_run))}: its words vocabulary differs from .*member3"):
        load_ensemble([members[0], tiny_run])
    with pytest.raises(ValueError, match="the same checkpoint is named twice"):
        load_ensemble([members[0], members[0]])


def test_an_ensemble_needs_two_members(members: list[Path]) -> None:
    from model.checkpoint import load_checkpoint
    from model.ensemble import Ensemble

    with pytest.raises(ValueError, match="at least 2 members, got 1"):
        Ensemble([load_checkpoint(members[0]).model], None)


def test_tagger_evaluate_scores_an_ensemble_of_checkpoints(
    members: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main
    from model.checkpoint import decoder_of
    from model.data import read_split
    from model.ensemble import load_ensemble
    from model.predict import predict_scores
    from tagger.evaluation import evaluate

    loaded = load_ensemble(members)
    ensemble, configs, vocab = loaded.model, loaded.configs, loaded.vocab
    dev = read_split(configs[0].data, configs[0].data.dev)
    decoder = decoder_of(ensemble.crf, configs[0], vocab)
    expected = evaluate(
        [list(s.tags) for s in dev], [decoder.decode(s).tags for s in predict_scores(ensemble, vocab, dev)]
    )

    assert main(["evaluate", str(members[0]), str(members[1]), configs[0].data.dev, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sentences"] == len(dev) and report["f1"] == pytest.approx(expected.to_dict()["f1"])
