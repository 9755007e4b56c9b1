"""A linear-chain CRF output layer: learned transition scores and the sentence-level likelihood.

Only training lives here (the negative log-likelihood). Decoding (Viterbi and
marginals) is `tagger.decoding.Decoder`, in numpy, shared with the service:
`CRF.to_numpy()` hands it the learned scores. The tag scheme's forbidden
moves are added as constant `FORBIDDEN` scores here exactly as the decoder
adds them, so the model is trained on the distribution it is decoded with.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tagger.decoding import CrfScores, constraint_scores
from tagger.schemes import Scheme


class CRF(nn.Module):
    """Transition scores between tags and from the sentence start / to its end."""

    def __init__(self, tags: Sequence[str], scheme: Scheme | None) -> None:
        super().__init__()
        k = len(tags)
        self.transitions = nn.Parameter(torch.zeros(k, k))
        self.start = nn.Parameter(torch.zeros(k))
        self.end = nn.Parameter(torch.zeros(k))
        fixed = [torch.from_numpy(a).float() for a in constraint_scores(tags, scheme)]
        self.fixed_transitions: Tensor
        self.fixed_start: Tensor
        self.fixed_end: Tensor
        self.register_buffer("fixed_transitions", fixed[0])
        self.register_buffer("fixed_start", fixed[1])
        self.register_buffer("fixed_end", fixed[2])

    def scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """Learned plus fixed (constraint) scores: transitions (K, K), start (K,), end (K,)."""
        return (
            self.transitions + self.fixed_transitions,
            self.start + self.fixed_start,
            self.end + self.fixed_end,
        )

    def log_partition(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """log Z per sentence (B,), summing over every tag sequence of each sentence's length."""
        transitions, start, end = self.scores()
        alpha = start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emissions[:, t]
            alpha = torch.where((t < lengths).unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def sequence_score(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Score of the given tag sequences (B,); tags (B, T), anything at padded positions."""
        transitions, start, end = self.scores()
        b, t, _ = emissions.shape
        mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
        tags = torch.where(mask, tags, torch.zeros_like(tags))
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (B, T)
        moves = transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        last = tags[torch.arange(b), lengths - 1]
        return start[tags[:, 0]] + (emitted * mask).sum(1) + (moves * mask[:, 1:]).sum(1) + end[last]

    def nll(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """Negative log-likelihood per sentence (B,)."""
        return self.log_partition(emissions, lengths) - self.sequence_score(emissions, tags, lengths)

    def to_numpy(self) -> CrfScores:
        """The learned scores (constraints excluded: the decoder adds them from the scheme)."""
        return CrfScores(
            transitions=self.transitions.detach().double().numpy().copy(),
            start=self.start.detach().double().numpy().copy(),
            end=self.end.detach().double().numpy().copy(),
        )
