"""Synthetic corpora the tests write themselves: a CoNLL-2003-style NER corpus (IOB1 tags) and its config."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model.config import Config

NAMES = {
    "PER": ["John Smith", "Mary", "Angela Merkel", "Pedro Alvarez Gomez", "Li Wei", "Fatima", "Tom Hanks"],
    "LOC": ["Paris", "New York", "Germany", "Rio de Janeiro", "Tokyo", "Brazil", "Cape Town"],
    "ORG": ["Reuters", "United Nations", "Acme Corp", "Boeing", "Red Cross", "FIFA", "Bank of England"],
}
TEMPLATES = [
    "{PER} visited {LOC} on Monday .",
    "{PER} works for {ORG} in {LOC} .",
    "{ORG} said {PER} would travel to {LOC} .",
    "Officials from {ORG} met {PER} .",
    "Flights from {LOC} {LOC} were cancelled .",  # two adjacent spans of one type: IOB1 needs B- here
    "The weather was fine .",
]


def iob1_sentence(rng: random.Random) -> list[tuple[str, str]]:
    """Tokens with IOB1 tags: a span opens with I-X, or B-X when it directly follows another X span."""
    out: list[tuple[str, str]] = []
    previous_label = "O"
    for piece in rng.choice(TEMPLATES).split():
        if piece.startswith("{"):
            label = piece[1:-1]
            words = rng.choice(NAMES[label]).split()
            first = "B" if previous_label == label else "I"
            out += [(w, f"{first if i == 0 else 'I'}-{label}") for i, w in enumerate(words)]
            previous_label = label
        else:
            out.append((piece, "O"))
            previous_label = "O"
    return out


def write_conll2003(path: Path, n: int, seed: int) -> Path:
    """`token POS chunk NER` columns, -DOCSTART- lines between documents, as CoNLL-2003 ships."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        if i % 25 == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        lines += [f"{token} NNP B-NP {tag}" for token, tag in iob1_sentence(rng)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ner_config(folder: Path, **train: Any) -> Config:
    """A small CRF tagger on CoNLL-2003-style files (IOB1) written into `folder`."""
    from model.config import Config, DataConfig, ModelConfig, TrainConfig

    return Config(
        name="ner",
        data=DataConfig(
            train=str(write_conll2003(folder / "train.txt", 300, 1)),
            dev=str(write_conll2003(folder / "dev.txt", 60, 2)),
            test=str(write_conll2003(folder / "test.txt", 60, 3)),
            format="conll",
            task="ner",
        ),
        model=ModelConfig(
            glove=False, crf=True, hidden=32, layers=1, char_dim=8, char_filters=16, case_dim=4, word_dim=24
        ),
        train=TrainConfig(**{"epochs": 6, "batch_size": 8, "seed": 3, **train}),
    )
