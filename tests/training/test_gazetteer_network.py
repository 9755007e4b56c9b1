"""The network with name lists: one more input, batch-independent scores, and ONNX Runtime agreeing with PyTorch."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model.config import ModelConfig
from model.export import export_onnx
from model.network import Tagger
from tagger.encoding import Batch, Vocab
from tagger.gazetteer import Gazetteer, NameList
from tagger.runtime import input_names, session_options

WORDS = ["the", "cat", "sat", "in", "New", "York", "City", "with", "John", "Smith", "of", "Acme", "Inc.", "Paris"]
GAZETTEER = Gazetteer(
    (
        NameList("place", ("New York", "New York City", "Paris")),
        NameList("person_first", ("John",)),
        NameList("org_form", ("Inc.",)),
    )
)
CONFIG = ModelConfig(glove=False, word_dim=16, hidden=16, char_dim=8, char_filters=8, gazetteer_dim=3)


def vocab(gazetteer: Gazetteer | None = GAZETTEER) -> Vocab:
    return Vocab(
        words=("<pad>", "<unk>", *sorted({w.lower() for w in WORDS})),
        chars=("<pad>", "<unk>", *sorted({c for w in WORDS for c in w})),
        tags=("O", "B-LOC", "I-LOC"),
        gazetteer=gazetteer,
    )


@pytest.fixture(scope="module")
def model() -> Tagger:
    torch.manual_seed(0)
    config = ModelConfig(**{**CONFIG.__dict__, "gazetteer": "place,person_first,org_form"})
    tagger = Tagger(config, len(vocab().words), len(vocab().chars), 3).eval()
    with torch.no_grad():  # make the lists matter: a random table, scaled up
        assert tagger.gazetteer is not None
        tagger.gazetteer.weight.mul_(5)
    return tagger


def sentences(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(WORDS) for _ in range(rng.randint(1, 14))] for _ in range(n)]


def torch_scores(model: Tagger, batch: Batch) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(a) for a in batch.inputs().values())).numpy()


def test_the_lists_change_the_scores(model: Tagger) -> None:
    with_lists = torch_scores(model, vocab().encode([["in", "New", "York"]]))
    empty = Gazetteer((NameList("place", ("x",)), NameList("person_first", ("x",)), NameList("org_form", ("x",))))
    without_matches = torch_scores(model, vocab(empty).encode([["in", "New", "York"]]))
    assert np.abs(with_lists - without_matches)[0, 1:].max() > 1e-3


def test_scores_do_not_depend_on_the_batch(model: Tagger) -> None:
    corpus = sentences(30, 1)
    alone = [torch_scores(model, vocab().encode([s]))[0, : len(s)] for s in corpus]
    batched = torch_scores(model, vocab().encode(corpus))
    for i, s in enumerate(corpus):
        np.testing.assert_allclose(batched[i, : len(s)], alone[i], atol=1e-5)


def test_the_input_must_match_the_model(model: Tagger) -> None:
    batch = vocab(None).encode([["in", "Paris"]])
    with pytest.raises(ValueError, match="reads 3 name lists"):
        torch_scores(model, batch)
    plain = Tagger(CONFIG, len(vocab().words), len(vocab().chars), 3).eval()
    with pytest.raises(ValueError, match="reads no name lists"):
        torch_scores(plain, vocab().encode([["in", "Paris"]]))


def test_onnx_runtime_matches_pytorch_on_random_variable_length_batches(model: Tagger, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    export_onnx(model, vocab(), path)
    session = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
    assert (
        tuple(i.name for i in session.get_inputs())
        == input_names(vocab())
        == (
            "words",
            "cases",
            "chars",
            "lengths",
            "gazetteer",
        )
    )
    rng = random.Random(2)
    for seed in range(8):
        batch = vocab().encode(sentences(rng.randint(1, 9), seed))
        (ours,) = session.run(["scores"], batch.inputs())
        expected = torch_scores(model, batch)
        for row, n in enumerate(batch.lengths):
            np.testing.assert_allclose(ours[row, :n], expected[row, :n], atol=1e-5)


def test_a_model_without_lists_exports_the_four_input_graph(tmp_path: Path) -> None:
    plain = Tagger(CONFIG, len(vocab().words), len(vocab().chars), 3).eval()
    export_onnx(plain, vocab(None), tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["words", "cases", "chars", "lengths"]
