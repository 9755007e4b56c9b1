"""Compact weight storage: float16 or per-row int8 in the ONNX file, exactly the rounded PyTorch model's values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from model.config import ModelConfig
from model.export import export_onnx
from model.network import Tagger
from model.predict import predict_scores
from model.storage import Storage, round_weights, store_weights
from tagger.encoding import Vocab
from tagger.readers import Sentence

WORDS = [f"w{i}" for i in range(400)]
SENTENCES = [["w1", "w7", "w399"], ["w3", "unknown", "w12", "w300", "w5"]]


def tiny_model() -> tuple[Tagger, Vocab]:
    torch.manual_seed(0)
    vocab = Vocab(words=("<pad>", "<unk>", *WORDS), chars=("<pad>", "<unk>", "w", *"0123456789"), tags=("A", "B"))
    config = ModelConfig(glove=False, word_dim=32, hidden=32, layers=1, char_dim=8, char_filters=16)
    return Tagger(config, len(vocab.words), len(vocab.chars), 2).eval(), vocab


def onnx_scores(path: Path, vocab: Vocab) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, vocab.encode(SENTENCES).inputs())
    return np.asarray(scores)


@pytest.mark.parametrize(
    ("storage", "dtype", "max_ratio"),
    [("float16", onnx.TensorProto.FLOAT16, 0.55), ("int8", onnx.TensorProto.INT8, 0.36)],
)
def test_stored_weights_are_smaller_and_compute_what_the_rounded_model_does(
    tmp_path: Path, storage: Storage, dtype: int, max_ratio: float
) -> None:
    model, vocab = tiny_model()
    export_onnx(model, vocab, tmp_path / "float32.onnx")
    before = model.words.weight.detach().clone()
    assert round_weights(model, storage) > 0
    moved = (model.words.weight - before).abs()
    bound = before.abs().amax(dim=1, keepdim=True) / 127 / 2 if storage == "int8" else before.abs() * 2**-11
    assert (moved <= bound + 1e-7).all()

    path = tmp_path / f"{storage}.onnx"
    export_onnx(model, vocab, path)
    assert store_weights(path, storage) >= 3  # word vectors, LSTM input and recurrent weights
    assert path.stat().st_size < max_ratio * (tmp_path / "float32.onnx").stat().st_size
    assert any(i.data_type == dtype for i in onnx.load(str(path)).graph.initializer)

    scores = onnx_scores(path, vocab)
    expected = predict_scores(model, vocab, [Sentence(tuple(s)) for s in SENTENCES])
    for row, want in enumerate(expected):
        np.testing.assert_allclose(scores[row, : len(want)], want, atol=1e-5)


@pytest.mark.parametrize("storage", ["float16", "int8"])
def test_onnx_runtime_folds_the_stored_weights_back_to_float_constants(tmp_path: Path, storage: Storage) -> None:
    model, vocab = tiny_model()
    round_weights(model, storage)
    path = tmp_path / f"{storage}.onnx"
    export_onnx(model, vocab, path)
    assert store_weights(path, storage) >= 3
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as tagger.runtime sets it
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "optimized.onnx")).graph
    inputs = {name for node in graph.node for name in node.input}
    assert not any(name.endswith((".int8", ".float16", ".scale")) for name in inputs)


def test_weights_that_were_not_rounded_stay_float32(tmp_path: Path) -> None:
    model, vocab = tiny_model()
    path = tmp_path / "model.onnx"
    export_onnx(model, vocab, path)
    assert store_weights(path, "int8") == 0
    assert store_weights(path, "float16") == 0
