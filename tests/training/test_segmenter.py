"""The segmenter's training path on a slice of EWT: train, export (self-checked), load torch-free, segment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.segmenter import (
    DataSection,
    ModelSection,
    SegmenterConfig,
    ServeSection,
    TrainSection,
    load,
    train_segmenter,
)
from model.segmenter_data import LABELS, chunks, read_gold
from model.segmenter_export import export_segmenter
from model.segmenter_network import SegmenterNet, reverse_within
from tagger.segmentation import load_segmenter
from tests.conftest import EWT, need


def tiny(ewt_sample: dict[str, Path]) -> SegmenterConfig:
    return SegmenterConfig(
        name="tiny-segmenter",
        data=DataSection(train=str(ewt_sample["train"]), dev=str(ewt_sample["dev"]), test=str(ewt_sample["test"])),
        model=ModelSection(char_dim=8, class_dim=4, hidden=12),
        train=TrainSection(epochs=2, batch_size=8, seed=3, chunk_chars=300),
        serve=ServeSection(window=64, context=16),
    )


@pytest.mark.trains
def test_train_export_and_segment_torch_free(ewt_sample: dict[str, Path], tmp_path: Path) -> None:
    config = tiny(ewt_sample)
    best = train_segmenter(config, tmp_path / "run")
    assert best.is_file()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [1, 2]
    report = export_segmenter(tmp_path / "run", tmp_path / "export")
    assert report["parity"]["label_mismatches"] == 0 and report["parity"]["max_abs_diff"] <= 1e-4
    assert set(report["scores"]) == {"dev", "test"}
    segmenter = load_segmenter(tmp_path / "export")
    text = "A first paragraph. " * 20 + "\n\nAnd a second one"
    found = segmenter.segment(text, max_tokens=16)  # longer than a window: read in several
    assert found[-1].paragraph == 1 and text[found[-1].start : found[-1].end].endswith("second one")
    assert all(text[s.start : s.end] == text[s.start : s.end].strip() for s in found)


@pytest.mark.trains
def test_training_is_reproducible(ewt_sample: dict[str, Path], tmp_path: Path) -> None:
    config = tiny(ewt_sample)
    config = SegmenterConfig(config.name, config.data, config.model, TrainSection(epochs=1, batch_size=8, seed=3))
    first, _, _, _ = load(train_segmenter(config, tmp_path / "a"))
    second, _, _, _ = load(train_segmenter(config, tmp_path / "b"))
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_scores_do_not_depend_on_padding() -> None:
    torch.manual_seed(0)
    net = SegmenterNet(n_chars=20, n_labels=len(LABELS), char_dim=6, class_dim=3, hidden=5, dropout=0.0).eval()
    chars = torch.randint(2, 20, (3, 9))
    classes = torch.randint(1, 5, (3, 9))
    lengths = torch.tensor([9, 4, 6])
    batched = net(chars, classes, lengths)
    for row, n in enumerate(lengths.tolist()):
        alone = net(chars[row : row + 1, :n], classes[row : row + 1, :n], lengths[row : row + 1])
        assert torch.allclose(batched[row, :n], alone[0], atol=1e-6)


def test_reverse_within_keeps_padding_in_place() -> None:
    x = torch.arange(8.0).reshape(2, 4, 1)
    out = reverse_within(x, torch.tensor([3, 4]))
    assert out[:, :, 0].tolist() == [[2.0, 1.0, 0.0, 3.0], [7.0, 6.0, 5.0, 4.0]]


def test_labels_mark_token_and_sentence_ends_of_a_real_paragraph() -> None:
    sentences = read_gold(need(EWT / "en_ewt-ud-dev.conllu"))[:40]
    for chunk in chunks(sentences, 10_000):
        ends = [i for i, label in enumerate(chunk.labels) if label == "S"]
        assert [b - 1 for _, b in chunk.sentences] == ends
        assert all(not chunk.text[i].isspace() for i, label in enumerate(chunk.labels) if label != "O")
        assert np.all([label in LABELS for label in chunk.labels])
