"""Several trained taggers served as one: mean scores in one ONNX graph, mean CRF scores in the decoder.

Members must share their vocabularies and tag set (trained from the same data
with the same vocabulary settings; the seed may differ). The ensemble's
emissions are the mean of the members' emissions and its CRF scores the mean
of their CRF scores, so its sentence score is the mean of the members'
sentence scores: Viterbi finds the tag sequence the members agree on best
(a product of experts, each CRF's distribution raised to the power 1/K), and
the marginals are those of that pooled distribution. Nothing on the serving
side changes: the export has the same inputs, outputs and crf.json.

The frozen GloVe rows are identical in every member (pretrained, never
trained), so the members share one tensor, and the export stores it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from model.checkpoint import load_checkpoint, tag_scheme
from model.config import Config
from model.crf import CRF
from model.network import Tagger
from tagger.encoding import Vocab


class Ensemble(nn.Module):
    """The mean of its members' tag scores; `crf` holds the mean of their CRF scores (or None)."""

    def __init__(self, members: Sequence[Tagger], crf: CRF | None) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.crf = crf

    def forward(
        self, words: Tensor, cases: Tensor, chars: Tensor, lengths: Tensor, gazetteer: Tensor | None = None
    ) -> Tensor:
        """words, cases (B, T), chars (B, T, C), lengths (B,), gazetteer (B, T, L) -> mean scores (B, T, K)."""
        scores = [member(words, cases, chars, lengths, gazetteer) for member in self.members]
        return torch.stack(scores).mean(dim=0)  # (B, T, K)


def mean_crf(crfs: Sequence[CRF], config: Config, vocab: Vocab) -> CRF:
    """A CRF whose learned scores are the means of `crfs` (the fixed constraint scores are the scheme's)."""
    pooled = CRF(vocab.tags, tag_scheme(config, vocab))
    with torch.no_grad():
        for name in ("transitions", "start", "end"):
            getattr(pooled, name).copy_(torch.stack([getattr(c, name) for c in crfs]).mean(dim=0))
    return pooled


@dataclass(frozen=True)
class Loaded:
    """One checkpoint, or several pooled: the model to run, and each member's config and training state."""

    model: Tagger | Ensemble
    configs: list[Config]
    vocab: Vocab
    states: list[dict[str, Any]]

    @property
    def config(self) -> Config:
        """The (first member's) config: members share data and vocabulary settings."""
        return self.configs[0]


def load_ensemble(paths: Sequence[str | Path]) -> Loaded:
    """Load member checkpoints that can be pooled, or say which one cannot and why."""
    if len({str(p) for p in paths}) < len(paths):
        raise ValueError(
            f"the same checkpoint is named twice in {[str(p) for p in paths]}; ensemble members must differ"
        )
    loaded = [load_checkpoint(p) for p in paths]
    first_model, first_config, vocab = loaded[0].model, loaded[0].config, loaded[0].vocab
    for path, checkpoint in zip(paths[1:], loaded[1:], strict=True):
        model, config, other = checkpoint.model, checkpoint.config, checkpoint.vocab
        for what in ("words", "chars", "tags", "gazetteer"):
            if getattr(other, what) != getattr(vocab, what):
                raise ValueError(
                    f"{path}: its {what} vocabulary differs from {paths[0]}'s; ensemble members must be trained "
                    "on the same data with the same vocabulary settings (data.*, model.glove*, model.min_word_freq)"
                )
        if (model.crf is None) != (first_model.crf is None) or config.model.tag_scheme != first_config.model.tag_scheme:
            raise ValueError(f"{path}: its decoder (model.crf, model.tag_scheme) differs from {paths[0]}'s")
        shared = ("frozen_words", "frozen_scales") if first_model.bits is not None else ("frozen_words",)
        if model.bits != first_model.bits or not all(
            torch.equal(getattr(model, name), getattr(first_model, name)) for name in shared
        ):
            raise ValueError(f"{path}: its frozen GloVe rows differ from {paths[0]}'s (model.glove_int8/int4?)")
        for name in shared:
            setattr(model, name, getattr(first_model, name))  # one tensor, stored once in the export
    members = [c.model for c in loaded]
    crfs = [m.crf for m in members if m.crf is not None]
    crf = mean_crf(crfs, first_config, vocab) if crfs else None
    for member in members:
        member.crf = None  # the pooled CRF decodes; the members' own are folded into it
    ensemble = Ensemble(members, crf).eval()
    return Loaded(ensemble, [c.config for c in loaded], vocab, [c.state for c in loaded])


def load_models(paths: Sequence[str | Path]) -> Loaded:
    """One checkpoint as it is, several as their ensemble."""
    if len(paths) == 1:
        checkpoint = load_checkpoint(paths[0])
        return Loaded(checkpoint.model, [checkpoint.config], checkpoint.vocab, [checkpoint.state])
    return load_ensemble(paths)
