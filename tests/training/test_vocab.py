"""Which words a new model fine-tunes and which keep their pretrained vectors."""

from __future__ import annotations

from model.config import ModelConfig
from model.vocab import build_vocab
from tagger.readers import Sentence

TRAIN = [Sentence(("the", "cat", "zorbl", "the"), ("DET", "NOUN", "X", "DET"))]
GLOVE = ("the", ",", "cat", "dog")


def test_training_words_are_fine_tuned_and_glove_only_words_frozen() -> None:
    vocab, trained = build_vocab(TRAIN, ModelConfig(glove_top_k=4), GLOVE)
    assert vocab.words == ("<pad>", "<unk>", "the", "cat", "zorbl", ",", "dog")
    assert trained == 5  # padding, unknown and the three training words


def test_glove_freeze_keeps_every_glove_vector_fixed_and_trains_only_what_glove_lacks() -> None:
    vocab, trained = build_vocab(TRAIN, ModelConfig(glove_top_k=4, glove_freeze=True), GLOVE)
    assert vocab.words == ("<pad>", "<unk>", "zorbl", "the", "cat", ",", "dog")
    assert trained == 3  # padding, unknown, zorbl


def test_glove_freeze_without_glove_trains_every_word() -> None:
    vocab, trained = build_vocab(TRAIN, ModelConfig(glove=False, glove_freeze=True))
    assert trained == len(vocab.words) == 5
