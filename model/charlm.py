"""Character language-model co-training (after Liu et al. 2018, LM-LSTM-CRF): an auxiliary loss, training only.

Two small heads read the character CNN's state at each character of a word and
predict the character just outside what that state has seen: forward, the
character after its window; backward, the one before it. A word edge is a
class of its own (the padding id, 0), so `paris` teaches `s` then "end" forward
and "start" backward. The CNN's filters must then carry what spelling
predicts, beyond what the tagging loss alone asks of them.

Liu et al. run a character LSTM over the whole sentence; our character encoder
is a per-word CNN whose state at position c sees characters c-r .. c+r
(r = kernel // 2), so "next" means c+r+1 (forward) and c-r-1 (backward):
predicting c+1 from a window that contains it would teach nothing. The heads
are not part of `Tagger`: the exported graph does not change and costs
nothing more at inference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tagger.encoding import PAD

IGNORE = -100


class CharLM(nn.Module):
    """Forward and backward next-character heads over the character CNN's states."""

    def __init__(self, n_filters: int, n_chars: int, reach: int) -> None:
        super().__init__()
        self.reach = reach  # r: the CNN state at c has seen c-r .. c+r
        self.forward_head = nn.Sequential(nn.Linear(n_filters, n_filters), nn.ReLU(), nn.Linear(n_filters, n_chars))
        self.backward_head = nn.Sequential(nn.Linear(n_filters, n_filters), nn.ReLU(), nn.Linear(n_filters, n_chars))

    def forward(self, states: Tensor, chars: Tensor) -> Tensor:
        """states (N, F, C) from `CharCNN.states`, chars (B, T, C) with N = B*T -> mean loss of both directions."""
        flat = chars.reshape(-1, chars.shape[-1])  # (N, C)
        ahead, behind = targets(flat, self.reach)  # (N, C) each
        x = states.transpose(1, 2)  # (N, C, F)
        losses = []
        for head, gold in ((self.forward_head, ahead), (self.backward_head, behind)):
            keep = gold != IGNORE  # (N, C)
            if keep.any():
                losses.append(nn.functional.cross_entropy(head(x[keep]), gold[keep]))
        return torch.stack(losses).mean() if losses else states.sum() * 0.0


def targets(chars: Tensor, reach: int) -> tuple[Tensor, Tensor]:
    """Per character position, the id just outside a window of `reach` each side: ahead and behind.

    chars (N, C) padded with PAD -> two (N, C) int64: a character id, PAD (0) for
    the word edge right past the end (or before the start), IGNORE where the
    position is padding or the edge is further away.
    Example, reach 1, "abcd" as ids [2, 3, 4, 5]: ahead [4, 5, 0, IGNORE], behind [IGNORE, 0, 2, 3].
    """
    n, c = chars.shape
    lengths = (chars != PAD).sum(dim=1, keepdim=True)  # (N, 1)
    position = torch.arange(c).unsqueeze(0)  # (1, C)
    real = position < lengths  # (N, C)
    step = reach + 1
    padding = torch.full((n, step), PAD, dtype=chars.dtype)
    ahead = torch.cat([chars[:, step:], padding], dim=1)[:, :c]  # id at c + step, PAD past the end
    behind = torch.cat([padding, chars[:, : max(c - step, 0)]], dim=1)[:, :c]  # id at c - step, PAD before 0
    ahead = ahead.masked_fill(~real | (position + step > lengths), IGNORE)
    behind = behind.masked_fill(~real | (position - step < -1), IGNORE)
    return ahead, behind
