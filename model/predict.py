"""Tag scores from a PyTorch model, in corpus order (the reference the export is checked against)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from model.batches import iterate
from tagger.encoding import Vocab
from tagger.readers import Sentence


@torch.no_grad()
def predict_scores(
    model: nn.Module, vocab: Vocab, sentences: Sequence[Sentence], batch_size: int = 64
) -> list[np.ndarray]:
    """Per sentence, its (n_tokens, n_tags) float32 scores from a `Tagger` or `Ensemble` (put in eval mode)."""
    model.eval()
    out: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(sentences)
    for batch in iterate(vocab, sentences, batch_size, gold=False):
        scores = model(*batch.inputs).numpy()  # (B, T, K)
        for row, index in enumerate(batch.indices):
            out[index] = scores[row, : len(sentences[index].tokens)]
    return out
