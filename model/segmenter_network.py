"""The segmenter's network: character + character-class embeddings -> BiLSTM -> label scores per character.

Why not `model.network.Tagger`: its BiLSTM runs on packed sequences, and on
this CPU build PyTorch's packed LSTM is about 20 times slower than the plain
one (32 x 600 characters, forward and backward: 10 s against 0.5 s). Here the
two directions are two plain LSTMs, and the backward one reads each sequence
reversed within its own length (a gather), so padding only ever follows the
real characters and never reaches their scores: results do not depend on
the batch, as the project requires, and the graph needs no `sequence_lens`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tagger.segmentation import CHAR_CLASSES, PAD


def reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first `lengths[b]` steps, leaving its padding in place.

    x (B, T, D), lengths (B,) -> (B, T, D); its own inverse. Example, T = 4,
    length 3: steps [a, b, c, pad] -> [c, b, a, pad].
    """
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    last = lengths.unsqueeze(1) - 1  # (B, 1)
    index = torch.where(steps <= last, last - steps, steps)  # (B, T)
    return torch.gather(x, 1, index.unsqueeze(2).expand(-1, -1, x.shape[2]))


class SegmenterNet(nn.Module):
    """Scores (B, T, K) for characters (B, T) and their classes (B, T), padded, with lengths (B,)."""

    def __init__(self, n_chars: int, n_labels: int, char_dim: int, class_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.chars = nn.Embedding(n_chars, char_dim, padding_idx=PAD)
        self.classes = nn.Embedding(len(CHAR_CLASSES), class_dim, padding_idx=PAD)
        self.forward_lstm = nn.LSTM(char_dim + class_dim, hidden, batch_first=True)
        self.backward_lstm = nn.LSTM(char_dim + class_dim, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, n_labels)

    def forward(self, chars: Tensor, classes: Tensor, lengths: Tensor) -> Tensor:
        x = self.dropout(torch.cat([self.chars(chars), self.classes(classes)], dim=-1))  # (B, T, D)
        ahead, _ = self.forward_lstm(x)  # (B, T, H)
        behind, _ = self.backward_lstm(reverse_within(x, lengths))  # (B, T, H), reversed
        h = torch.cat([ahead, reverse_within(behind, lengths)], dim=-1)  # (B, T, 2H)
        return self.out(self.dropout(h))  # (B, T, K)
