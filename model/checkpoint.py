"""Checkpoints: a model's weights with the config and vocabularies that give them meaning.

A checkpoint holds only tensors, numbers, strings, lists and dicts, and is
loaded with `weights_only=True`: no code runs when one is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.config import Config
from model.crf import CRF
from model.network import Tagger
from tagger.decoding import Decoder
from tagger.encoding import Vocab
from tagger.schemes import Scheme, is_span_tagset

CHECKPOINT_FORMAT = "tagger-checkpoint-1"


@dataclass(frozen=True)
class Checkpoint:
    """A trained model with what gives it meaning, as read from a .pt file."""

    model: Tagger  # in eval mode
    config: Config
    vocab: Vocab
    # best.pt: {"epoch", "dev_metric", "averaged"}; last.pt: the run state and what resumes it (`model.train`)
    state: dict[str, Any]


def tag_scheme(config: Config, vocab: Vocab) -> Scheme | None:
    """The scheme of the model's tags: the configured one for span tag sets, None for plain tags."""
    return config.model.tag_scheme if is_span_tagset(vocab.tags) else None


def build_model(config: Config, vocab: Vocab, n_frozen_words: int = 0) -> Tagger:
    crf = CRF(vocab.tags, tag_scheme(config, vocab)) if config.model.crf else None
    return Tagger(
        config.model, len(vocab.words), len(vocab.chars), len(vocab.tags), n_frozen_words=n_frozen_words, crf=crf
    )


def decoder_of(crf: CRF | None, config: Config, vocab: Vocab) -> Decoder:
    """The shared decoder for a model: its tag scheme's constraints plus its CRF's scores, if it has one."""
    return Decoder(vocab.tags, tag_scheme(config, vocab), crf.to_numpy() if crf is not None else None)


def save_checkpoint(path: Path, model: Tagger, config: Config, vocab: Vocab, state: dict[str, Any]) -> None:
    """Write atomically, so an interrupted run never leaves a half-written best.pt."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "vocab": vocab.to_dict(),
        "model": model.state_dict(),
        "state": state,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint's model, config, vocabularies and training state.

    `path` may be a .pt file or a run folder (its best.pt is used).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint there (expected a .pt file or a run folder with best.pt)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors of many kinds for what is not one
        first = (str(err).strip().splitlines() or [""])[0]  # torch's messages run to paragraphs
        raise ValueError(f"{path}: cannot be read as a checkpoint ({type(err).__name__}: {first})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a tagger checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    config = Config.from_dict(payload["config"], source=str(path))
    vocab = Vocab.from_dict(payload["vocab"])
    model = build_model(config, vocab, n_frozen_words=len(payload["model"]["frozen_words"]))
    model.load_state_dict(payload["model"])
    model.eval()
    return Checkpoint(model, config, vocab, payload["state"])
