"""The network's scores for a sentence never depend on its batch or its padding."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from model.config import ModelConfig
from model.network import Tagger
from tagger.encoding import Vocab

WORDS = ["the", "cat", "sat", "on", "a", "mat", "Paris", "1984", "!", "supercalifragilistic"]


@pytest.fixture(scope="module")
def setup() -> tuple[Tagger, Vocab]:
    torch.manual_seed(0)
    vocab = Vocab(
        words=("<pad>", "<unk>", *sorted({w.lower() for w in WORDS})),
        chars=("<pad>", "<unk>", *sorted({c for w in WORDS for c in w})),
        tags=("A", "B", "C"),
    )
    config = ModelConfig(glove=False, word_dim=16, hidden=16, char_dim=8, char_filters=8)
    return Tagger(config, len(vocab.words), len(vocab.chars), len(vocab.tags)).eval(), vocab


def scores(model: Tagger, vocab: Vocab, sentences: list[list[str]]) -> list[np.ndarray]:
    batch = vocab.encode(sentences)
    with torch.no_grad():
        out = model(*(torch.from_numpy(a) for a in batch.inputs().values())).numpy()
    return [out[i, : len(s)] for i, s in enumerate(sentences)]


def test_a_sentence_scores_the_same_alone_and_in_any_batch(setup: tuple[Tagger, Vocab]) -> None:
    model, vocab = setup
    rng = random.Random(3)
    sentences = [[rng.choice(WORDS) for _ in range(rng.randint(1, 12))] for _ in range(40)]
    alone = [scores(model, vocab, [s])[0] for s in sentences]
    for _ in range(5):
        order = rng.sample(range(len(sentences)), k=len(sentences))
        for start in range(0, len(order), 7):
            chunk = order[start : start + 7]
            for index, batched in zip(chunk, scores(model, vocab, [sentences[i] for i in chunk]), strict=True):
                np.testing.assert_allclose(batched, alone[index], atol=1e-5)
                assert (batched.argmax(-1) == alone[index].argmax(-1)).all()


def test_character_padding_width_does_not_change_scores(setup: tuple[Tagger, Vocab]) -> None:
    model, vocab = setup
    short = scores(model, vocab, [["the", "cat"]])[0]
    # a long word elsewhere in the batch widens the character axis from 3 to 20
    padded = scores(model, vocab, [["the", "cat"], ["supercalifragilistic"]])[0]
    np.testing.assert_allclose(padded, short, atol=1e-6)


def test_pretrained_vectors_must_match_the_vocabulary() -> None:
    config = ModelConfig(glove=False, word_dim=4)
    with pytest.raises(ValueError, match=r"pretrained vectors must be \(10, 4\), got \(9, 4\)"):
        Tagger(config, 10, 5, 3, pretrained=np.zeros((9, 4), dtype=np.float32))


@pytest.mark.parametrize(("bits", "dim"), [(8, 6), (4, 6), (4, 7)])
def test_quantized_frozen_vectors_stay_close_and_export_identically(tmp_path: Path, bits: int, dim: int) -> None:
    """GloVe-only rows stored as int8 or packed 4-bit codes + one scale per row: within half a step of the vectors
    (odd widths too); ONNX agrees with PyTorch."""
    import onnxruntime as ort

    from model.export import export_onnx

    words = ("<pad>", "<unk>", *sorted({w.lower() for w in WORDS}))
    vocab = Vocab(words=words, chars=("<pad>", "<unk>", *sorted({c for w in WORDS for c in w})), tags=("A", "B"))
    config = ModelConfig(
        glove=False,
        glove_int8=bits == 8,
        glove_int4=bits == 4,
        word_dim=dim,
        hidden=8,
        layers=1,
        char_dim=4,
        char_filters=4,
    )
    vectors = np.random.default_rng(0).normal(size=(len(words), dim)).astype(np.float32)
    vectors[0] = 0.0
    n_frozen = len(words) - 4
    model = Tagger(config, len(words), len(vocab.chars), 2, pretrained=vectors, n_frozen_words=n_frozen).eval()
    assert model.frozen_words.dtype == (torch.int8 if bits == 8 else torch.uint8)
    assert model.frozen_words.shape == (n_frozen, dim if bits == 8 else (dim + 1) // 2)
    restored = model.embed_words(torch.arange(len(words)).unsqueeze(0))[0].detach().numpy()
    half_step = np.abs(vectors).max(axis=1, keepdims=True) / (127 if bits == 8 else 7) / 2
    assert (np.abs(restored - vectors)[4:] <= half_step[4:] + 1e-6).all()
    np.testing.assert_array_equal(restored[:4], model.words.weight.detach().numpy())

    export_onnx(model, vocab, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    sentences = [["the", "cat", "Paris"], ["supercalifragilistic", "!", "mat", "on", "a"]]
    (onnx_scores,) = session.run(None, vocab.encode(sentences).inputs())
    for row, expected in enumerate(scores(model, vocab, sentences)):
        np.testing.assert_allclose(onnx_scores[row, : len(expected)], expected, atol=1e-5)
