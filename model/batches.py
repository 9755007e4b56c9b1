"""Length-grouped batches of encoded sentences, as torch tensors.

Sentences of similar length go together so little compute is spent on padding;
the order of the batches is shuffled each epoch so training still sees a
random stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tagger.encoding import UNK, Vocab, length_sorted
from tagger.readers import Sentence


@dataclass(frozen=True)
class TensorBatch:
    words: Tensor  # (B, T) int64
    cases: Tensor  # (B, T) int64
    chars: Tensor  # (B, T, C) int64
    lengths: Tensor  # (B,) int64
    tags: Tensor  # (B, T) int64 gold tag ids, -100 at padding (or all -100 if untagged)
    indices: list[int]  # positions of these sentences in the corpus
    gazetteer: Tensor | None = None  # (B, T, L) int64 name-list codes, for a model with lists

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        """The model's inputs in graph order: words, cases, chars, lengths (and gazetteer, with lists)."""
        own = (self.words, self.cases, self.chars, self.lengths)
        return own if self.gazetteer is None else (*own, self.gazetteer)


def to_tensors(vocab: Vocab, sentences: Sequence[Sentence], indices: list[int], gold: bool = True) -> TensorBatch:
    """Encode the chosen sentences with the shared encoder and wrap them as tensors.

    With `gold`, tags are encoded too, and a tag outside the model's tag set is an error.
    """
    chosen = [sentences[i] for i in indices]
    batch = vocab.encode([s.tokens for s in chosen])
    tags = torch.full(batch.words.shape, -100, dtype=torch.int64)
    for row, sentence in enumerate(chosen):
        if gold and sentence.tags:
            tags[row, : len(sentence.tags)] = torch.tensor(vocab.tag_ids(sentence.tags))
    return TensorBatch(
        words=torch.from_numpy(batch.words),
        cases=torch.from_numpy(batch.cases),
        chars=torch.from_numpy(batch.chars),
        lengths=torch.from_numpy(batch.lengths),
        tags=tags,
        indices=indices,
        gazetteer=torch.from_numpy(batch.gazetteer) if batch.gazetteer is not None else None,
    )


def length_grouped(lengths: Sequence[int], batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Split sentence indices into batches of similar length.

    With an rng, lengths are jittered and the batch order shuffled (training);
    without one, batches are sorted by length (evaluation).
    Example: lengths [5, 1, 4, 2], batch_size 2, no rng -> [[1, 3], [2, 0]].
    """
    if rng is None:
        return length_sorted(lengths, batch_size)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] + rng.uniform(-2.0, 2.0))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def iterate(
    vocab: Vocab, sentences: Sequence[Sentence], batch_size: int, rng: random.Random | None = None, gold: bool = True
) -> Iterator[TensorBatch]:
    for indices in length_grouped([len(s.tokens) for s in sentences], batch_size, rng):
        yield to_tensors(vocab, sentences, indices, gold)


def unk_probabilities(vocab: Vocab, counts: dict[str, int], alpha: float) -> Tensor:
    """Per word id, the chance of replacing it by UNK in training: alpha / (alpha + count).

    Rare words are dropped often, so the UNK vector learns what an unseen word
    looks like (Kiperwasser & Goldberg 2016); frequent words almost never are.
    """
    probs = torch.zeros(len(vocab.words))
    if alpha > 0:
        for i, word in enumerate(vocab.words[2:], start=2):
            count = counts.get(word, 0)
            probs[i] = alpha / (alpha + count) if count else 0.0
    return probs


def drop_words(words: Tensor, unk_probs: Tensor, generator: torch.Generator) -> Tensor:
    """Replace word ids by UNK with their per-id probability (training only)."""
    drop = torch.rand(words.shape, generator=generator) < unk_probs[words]
    return words.masked_fill(drop, UNK)
