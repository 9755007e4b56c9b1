"""Train the character-level segmenter: EWT paragraphs as raw text, one label per character.

    python -m model.segmenter train configs/segmenter/segmenter-ewt.json --out runs/segmenter-en-ewt
    python -m model.segmenter export runs/segmenter-en-ewt exports/segmenter-en-ewt

What it shares with the tagger's training (`model.train`): Adam with plateau
decay, gradient clipping, early stopping on the dev metric, one seed for
everything, deterministic algorithms, length-grouped shuffled batches
(`model.batches.length_grouped`), a run folder with config, best.pt and a
JSON line per epoch. What it does not: the network (`model.segmenter_network`
says why) and the data, built in memory from the treebank
(`model.segmenter_data`). The dev metric is the F1 of sentence ends
(characters labelled S), the character-level face of sentence F1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.batches import length_grouped
from model.segmenter_data import Paragraph, chunks, read_gold
from model.segmenter_network import SegmenterNet
from tagger.segmentation import LABELS, PAD_CHAR, SENTENCE_END, UNK, UNK_CHAR, encode_chars

CHECKPOINT_FORMAT = "tagger-segmenter-checkpoint-1"


@dataclass(frozen=True)
class DataSection:
    train: str = ""  # CoNLL-U with # newdoc, # newpar and # text
    dev: str = ""  # picks the best epoch; the export's self-check
    test: str = ""  # scored once, at export


@dataclass(frozen=True)
class ModelSection:
    char_dim: int = 32
    class_dim: int = 8  # character class (upper, lower, digit, stop, ...) embedding size
    hidden: int = 64  # LSTM units per direction
    dropout: float = 0.2
    min_char_count: int = 2  # rarer training characters are unknown (their class still tells what they are)


@dataclass(frozen=True)
class TrainSection:
    seed: int = 1
    epochs: int = 30
    batch_size: int = 32  # sequences per batch
    lr: float = 2e-3
    clip: float = 5.0
    lr_decay: float = 0.5
    lr_patience: int = 2
    patience: int = 5
    threads: int = 1
    chunk_chars: int = 600  # a sequence: consecutive sentences of a paragraph, at most this long
    newline: float = 0.15  # chance that the space between two sentences is a line break (one sentence a line)
    wrap: float = 0.1  # chance that a sequence is hard-wrapped at 40-80 characters (e-mail), line breaks mid-sentence
    char_dropout: float = 0.02  # chance per character per batch of reading it as unknown
    max_sequences: int = 0  # only the first N training sequences (0 = all): tests


@dataclass(frozen=True)
class ServeSection:
    window: int = 512  # characters labelled per window of a long paragraph
    context: int = 64  # characters read on each side of a window


@dataclass(frozen=True)
class SegmenterConfig:
    name: str = "segmenter"
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
    serve: ServeSection = field(default_factory=ServeSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> SegmenterConfig:
        sections: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "name" or f.name not in data:
                continue
            section_cls = type(getattr(cls(), f.name))
            known = {g.name: g.type for g in dataclasses.fields(section_cls)}
            bad = set(data[f.name]) - set(known)
            if bad:
                raise ValueError(f"{source}: unknown fields {sorted(bad)} in [{f.name}]; known: {sorted(known)}")
            sections[f.name] = section_cls(**data[f.name])
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{source}: unknown sections {sorted(unknown)}")
        return cls(name=str(data.get("name", "segmenter")), **sections)

    @classmethod
    def load(cls, path: str | Path) -> SegmenterConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), source=str(path))


@dataclass(frozen=True)
class Encoded:
    chars: np.ndarray  # (n,) int64
    classes: np.ndarray  # (n,) int64
    labels: np.ndarray  # (n,) int64


def inventory(texts: Sequence[str], min_count: int) -> list[str]:
    """Characters seen at least `min_count` times, most frequent first, after padding and unknown."""
    counts = Counter(ch for text in texts for ch in text)
    return [
        PAD_CHAR,
        UNK_CHAR,
        *sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c)),
    ]


def encode(paragraphs: Sequence[Paragraph], chars: Sequence[str]) -> list[Encoded]:
    index = {c: i for i, c in enumerate(chars)}
    label_ids = {label: i for i, label in enumerate(LABELS)}
    out = []
    for p in paragraphs:
        ids, classes = encode_chars(p.text, index)
        out.append(Encoded(ids, classes, np.array([label_ids[x] for x in p.labels], dtype=np.int64)))
    return out


def to_tensors(items: Sequence[Encoded]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded chars, classes, labels (-100 at padding), each (B, T), and lengths (B,)."""
    lengths = torch.tensor([len(x.chars) for x in items])
    width = int(lengths.max())
    chars = torch.zeros(len(items), width, dtype=torch.int64)
    classes = torch.zeros_like(chars)
    labels = torch.full_like(chars, -100)
    for row, x in enumerate(items):
        n = len(x.chars)
        chars[row, :n], classes[row, :n], labels[row, :n] = (
            torch.from_numpy(a) for a in (x.chars, x.classes, x.labels)
        )
    return chars, classes, labels, lengths


def build(config: SegmenterConfig, n_chars: int) -> SegmenterNet:
    m = config.model
    return SegmenterNet(n_chars, len(LABELS), m.char_dim, m.class_dim, m.hidden, m.dropout)


@torch.no_grad()
def predict(net: SegmenterNet, items: Sequence[Encoded], batch_size: int = 64) -> list[np.ndarray]:
    """Per sequence, its (n, K) float32 scores, in input order."""
    net.eval()
    out: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(items)
    for indices in length_grouped([len(x.chars) for x in items], batch_size, None):
        chars, classes, _, lengths = to_tensors([items[i] for i in indices])
        scores = net(chars, classes, lengths).numpy()
        for row, i in enumerate(indices):
            out[i] = scores[row, : len(items[i].chars)]
    return out


def sentence_end_f1(items: Sequence[Encoded], scores: Sequence[np.ndarray]) -> float:
    """F1 of characters labelled S (a sentence ends there) against gold."""
    gold = np.concatenate([x.labels for x in items]) == SENTENCE_END
    predicted = np.concatenate([s.argmax(axis=1) for s in scores]) == SENTENCE_END
    hits = int((gold & predicted).sum())
    return 2 * hits / max(int(gold.sum()) + int(predicted.sum()), 1)


def save(path: Path, net: SegmenterNet, config: SegmenterConfig, chars: list[str], state: dict[str, Any]) -> None:
    payload = {"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "chars": chars, "model": net.state_dict()}
    tmp = path.with_suffix(".tmp")
    torch.save(payload | {"state": state}, tmp)
    tmp.replace(path)


def load(path: str | Path) -> tuple[SegmenterNet, SegmenterConfig, list[str], dict[str, Any]]:
    """A segmenter checkpoint (a .pt file or a run folder's best.pt): net in eval mode, config, chars, state."""
    path = Path(path)
    path = path / "best.pt" if path.is_dir() else path
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a segmenter checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    config = SegmenterConfig.from_dict(payload["config"], str(path))
    net = build(config, len(payload["chars"]))
    net.load_state_dict(payload["model"])
    return net.eval(), config, payload["chars"], payload["state"]


def train_segmenter(config: SegmenterConfig, out: Path) -> Path:
    """Train into the run folder `out` (config.json, best.pt, log.jsonl); returns best.pt's path."""
    t = config.train
    torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    torch.use_deterministic_algorithms(True)
    rng = random.Random(t.seed)
    train_paragraphs = list(
        chunks(read_gold(config.data.train), t.chunk_chars, random.Random(t.seed), t.newline, t.wrap)
    )
    if t.max_sequences:
        train_paragraphs = train_paragraphs[: t.max_sequences]
    chars = inventory([p.text for p in train_paragraphs], config.model.min_char_count)
    train = encode(train_paragraphs, chars)
    dev = encode(list(chunks(read_gold(config.data.dev), t.chunk_chars)), chars)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    net = build(config, len(chars))
    optimizer = torch.optim.Adam(net.parameters(), lr=t.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "max", t.lr_decay, t.lr_patience)
    best, bad = -1.0, 0
    for epoch in range(1, t.epochs + 1):
        started = time.perf_counter()
        loss = _epoch(net, optimizer, train, t, rng)
        metric = sentence_end_f1(dev, predict(net, dev))
        scheduler.step(metric)
        improved = metric > best
        best, bad = max(best, metric), 0 if improved else bad + 1
        entry = {"epoch": epoch, "train_loss": round(loss, 5), "dev_sentence_end_f1": round(metric, 5)}
        entry |= {"lr": optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - started, 1)}
        print(json.dumps(entry | {"improved": improved}), flush=True)
        with open(out / "log.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(entry | {"improved": improved}) + "\n")
        if improved:
            save(out / "best.pt", net, config, chars, {"epoch": epoch, "dev_metric": metric})
        if bad >= t.patience:
            break
    return out / "best.pt"


def _epoch(
    net: SegmenterNet, optimizer: torch.optim.Optimizer, train: list[Encoded], t: TrainSection, rng: random.Random
) -> float:
    """One pass over shuffled length-grouped batches; returns the mean loss per batch."""
    net.train()
    total, batches = 0.0, 0
    for indices in length_grouped([len(x.chars) for x in train], t.batch_size, rng):
        chars, classes, labels, lengths = to_tensors([train[i] for i in indices])
        if t.char_dropout:
            dropped = torch.rand(chars.shape) < t.char_dropout
            chars = chars.masked_fill(dropped & (chars != 0), UNK)
        scores = net(chars, classes, lengths)  # (B, T, K)
        loss = torch.nn.functional.cross_entropy(scores.reshape(-1, scores.shape[-1]), labels.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), t.clip)
        optimizer.step()
        total, batches = total + loss.item(), batches + 1
    return total / max(batches, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model.segmenter", description=(__doc__ or "").split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a segmenter from a config")
    train.add_argument("config", type=Path)
    train.add_argument("--out", type=Path, required=True, help="run folder")
    export = commands.add_parser("export", help="export a run's best.pt as a segmenter folder, self-checked")
    export.add_argument("run", type=Path)
    export.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "train":
        print(train_segmenter(SegmenterConfig.load(args.config), args.out))
    else:
        from model.segmenter_export import export_segmenter

        print(json.dumps(export_segmenter(args.run, args.out), indent=1))


if __name__ == "__main__":
    main()
