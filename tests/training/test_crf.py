"""The CRF layer: its likelihood against brute force, and agreement with the shared numpy decoder."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from model.crf import CRF
from tagger.decoding import Decoder
from tagger.schemes import Scheme

TAGS = {"IOB2": ("B-PER", "I-PER", "O"), "BIOES": ("B-PER", "I-PER", "E-PER", "S-PER", "O"), None: ("A", "B", "C")}


def randomized(scheme: Scheme | None, seed: int) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(TAGS[scheme], scheme)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def brute_log_z(crf: CRF, emissions: torch.Tensor) -> float:
    transitions, start, end = (x.detach().double() for x in crf.scores())
    t, k = emissions.shape
    totals = []
    for path in itertools.product(range(k), repeat=t):
        score = start[path[0]] + end[path[-1]] + sum(emissions[i, p].double() for i, p in enumerate(path))
        score = score + sum(transitions[a, b] for a, b in itertools.pairwise(path))
        totals.append(float(score))
    return float(np.logaddexp.reduce(totals))


@pytest.mark.parametrize("scheme", ["IOB2", "BIOES", None])
def test_log_partition_matches_brute_force_with_padding(scheme: Scheme | None) -> None:
    crf = randomized(scheme, 1)
    k = len(TAGS[scheme])
    lengths = torch.tensor([4, 1, 3])
    emissions = torch.randn(3, 4, k)
    log_z = crf.log_partition(emissions, lengths).detach()
    for row, n in enumerate(lengths.tolist()):
        assert float(log_z[row]) == pytest.approx(brute_log_z(crf, emissions[row, :n]), abs=1e-4)


def test_nll_of_every_path_sums_to_probability_one() -> None:
    crf = randomized("IOB2", 2)
    emissions = torch.randn(1, 3, 3)
    lengths = torch.tensor([3])
    total = 0.0
    for path in itertools.product(range(3), repeat=3):
        total += float(torch.exp(-crf.nll(emissions, torch.tensor([path]), lengths)).detach()[0])
    assert total == pytest.approx(1.0, abs=1e-5)


def test_padded_gold_positions_do_not_change_the_score() -> None:
    crf = randomized("BIOES", 3)
    emissions = torch.randn(1, 5, 5)
    lengths = torch.tensor([3])
    a = crf.sequence_score(emissions, torch.tensor([[3, 4, 0, -100, -100]]), lengths)
    b = crf.sequence_score(emissions, torch.tensor([[3, 4, 0, 2, 1]]), lengths)
    assert torch.equal(a, b)


def test_training_learns_transitions_the_shared_decoder_uses() -> None:
    """Emissions that favour I-PER everywhere, gold that is B-PER I-PER ... : the CRF learns the pattern."""
    crf = CRF(TAGS["IOB2"], "IOB2")
    optimizer = torch.optim.Adam(crf.parameters(), lr=0.1)
    emissions = torch.zeros(1, 4, 3)
    gold = torch.tensor([[0, 1, 1, 2]])  # B-PER I-PER I-PER O
    lengths = torch.tensor([4])
    first = float(crf.nll(emissions, gold, lengths).detach()[0])
    for _ in range(100):
        optimizer.zero_grad()
        crf.nll(emissions, gold, lengths).sum().backward()
        optimizer.step()
    assert float(crf.nll(emissions, gold, lengths).detach()[0]) < first / 2
    decoded = Decoder(TAGS["IOB2"], "IOB2", crf.to_numpy()).decode(emissions[0].numpy())
    assert decoded.tags == ["B-PER", "I-PER", "I-PER", "O"]
    assert [(s.label, s.start, s.end) for s in decoded.spans] == [("PER", 0, 3)]
