"""Distillation: one student network trained to reproduce an ensemble of teachers (`tagger distill`).

An ensemble (`model.ensemble`) is a CRF too: the mean of its members'
emissions and the mean of their CRF scores. The student is trained on the
teachers' whole distribution over tag sequences instead of the gold tags: its
loss per sentence is the cross-entropy between the teachers' CRF distribution
q and its own p,

    E_q[-log p(y)] = log Z_p - E_q[score_p(y)]
                   = log Z_p - sum_t sum_k q_t(k) e_t(k) - sum_t sum_ij q_t(i, j) T(i, j) - start and end terms,

which needs only the teachers' tag marginals q_t(k) and their pairwise
marginals q_t(i, j) at each step (structure-level knowledge distillation,
Wang et al. 2020). Both come from autograd: they are the gradients of the
teachers' log Z with respect to their emissions and to per-step copies of
their transition scores. The loss is lowest, at the teachers' entropy, when
the student's distribution equals theirs.

Concessions: the teachers run on every training batch (a forward pass each,
no gradient), so a distillation epoch costs about (1 + members / 3) training
epochs; and the student shares the teachers' vocabularies (words, characters,
tags, name lists), since it reads the very inputs they read. Its own word
vectors start from the first teacher's, the rest of its weights fresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from model.checkpoint import build_model
from model.config import Config
from model.crf import CRF
from model.ensemble import Ensemble, Loaded, load_models
from model.network import Tagger
from tagger.encoding import Vocab


@dataclasses.dataclass(frozen=True)
class Teachers:
    """The teachers' pooled network (one member or an ensemble) and its CRF (mean scores)."""

    model: Tagger | Ensemble  # in eval mode, never trained here
    crf: CRF

    @torch.no_grad()
    def emissions(self, inputs: Sequence[Tensor]) -> Tensor:
        """(B, T, K) mean emission scores of the teachers."""
        return self.model(*inputs)


def load_teachers(paths: Sequence[str | Path]) -> tuple[Teachers, Loaded]:
    """Load teacher checkpoints (one, or several as their ensemble); they must have a CRF."""
    loaded = load_models(paths)
    if loaded.model.crf is None:
        raise ValueError(f"{list(map(str, paths))}: distillation needs teachers with a CRF (model.crf true)")
    loaded.model.eval()
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    return Teachers(loaded.model, loaded.model.crf), loaded


def student(config: Config, loaded: Loaded) -> tuple[Tagger, Vocab]:
    """A fresh student with the teachers' vocabularies; its word vectors start as the first teacher's."""
    vocab = loaded.vocab
    names = vocab.gazetteer.names if vocab.gazetteer is not None else ()
    if config.model.gazetteer_lists() != names:
        raise ValueError(
            f"model.gazetteer is {config.model.gazetteer!r} but the teachers read the name lists {list(names)}; "
            "the student reads the teachers' inputs, so give it the same lists"
        )
    first = loaded.model.members[0] if isinstance(loaded.model, Ensemble) else loaded.model
    assert isinstance(first, Tagger)
    if config.model.word_dim != first.words.embedding_dim or config.model.glove_int4 != (first.bits == 4):
        raise ValueError("the student's model.word_dim and model.glove_int8/int4 must be the teachers'")
    model = build_model(config, vocab, n_frozen_words=first.frozen_words.shape[0])
    with torch.no_grad():
        model.words.weight.copy_(first.words.weight)
        model.frozen_words.copy_(first.frozen_words)
        if model.bits is not None:
            model.frozen_scales.copy_(first.frozen_scales)
    return model, vocab


def teacher_marginals(crf: CRF, emissions: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """The teachers' tag marginals (B, T, K) and pairwise marginals (B, T-1, K, K), 0 beyond each length.

    Gradients of log Z: with respect to the emissions, each token's tag
    marginals; with respect to a separate copy of the transition scores at each
    step, that step's pairwise marginals.
    """
    transitions, start, end = (s.detach() for s in crf.scores())
    b, t, k = emissions.shape
    with torch.enable_grad():
        e = emissions.detach().clone().requires_grad_(True)
        steps = transitions.expand(b, max(t - 1, 0), k, k).clone().requires_grad_(True)  # (B, T-1, K, K)
        log_z = log_partition(e, steps, start, end, lengths)
        unary, pairwise = torch.autograd.grad(log_z.sum(), (e, steps))
    return unary, pairwise


def log_partition(emissions: Tensor, steps: Tensor, start: Tensor, end: Tensor, lengths: Tensor) -> Tensor:
    """log Z (B,) of a CRF whose transition scores may differ per step: steps (B, T-1, K, K)."""
    alpha = start + emissions[:, 0]  # (B, K)
    for t in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha.unsqueeze(2) + steps[:, t - 1], dim=1) + emissions[:, t]  # (B, K)
        alpha = torch.where((t < lengths).unsqueeze(1), step, alpha)
    return torch.logsumexp(alpha + end, dim=1)


def distillation_loss(crf: CRF, emissions: Tensor, lengths: Tensor, unary: Tensor, pairwise: Tensor) -> Tensor:
    """Per real token, the cross-entropy E_q[-log p(y)] of the student's CRF under the teachers' marginals.

    emissions (B, T, K) the student's; unary (B, T, K) and pairwise (B, T-1, K, K) the teachers'
    (`teacher_marginals`), zero at padding.
    """
    transitions, start, end = crf.scores()
    b = emissions.shape[0]
    rows = torch.arange(b)
    expected = (unary * emissions).sum(dim=(1, 2))  # (B,)
    expected = expected + (pairwise * transitions).sum(dim=(1, 2, 3))
    expected = expected + unary[:, 0] @ start + (unary[rows, lengths - 1] * end).sum(dim=1)
    return (crf.log_partition(emissions, lengths) - expected).sum() / lengths.sum()
