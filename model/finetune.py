"""Fine-tune a trained model on people's corrections, and write it out only if it kept what it knew.

    corrections (CoNLL-U or IOB2, as the corrections store exports them)
      -> held out: a share, never trained on, to measure the gain on
      -> a few epochs on the rest, each mixed with a fresh share of the model's original training corpora
      -> before/after on the held-out corrections and on the original test set
      -> refused if the original test score fell by more than `max_drop` points; else a checkpoint in a run
         folder and a new export (a new version) in the models folder, where the live swap picks it up

Where the weights come from: an export folder holds the ONNX graph (int8 weights for en-ner, GloVe as
4-bit codes), not the float weights training needs, so the fine-tune starts from the training
checkpoint: a run folder (its best.pt) or a .pt file; given an export folder, it uses a `checkpoint.pt`
inside it if one is there, and otherwise says to pass the run folder. The result is saved as a
checkpoint too, so a fine-tuned model can be fine-tuned again.

The concessions: the vocabulary is the model's own (its embedding tables have a fixed size), so words
seen only in corrections are read as unknown words through the character CNN and the GloVe vectors the
model carries; the last epoch's weights are kept (choosing an epoch on the held-out corrections would
spend them, and on the original test set would fit the guard).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from model.augment import draw_epoch, recase
from model.batches import drop_words, iterate, unk_probabilities
from model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, tag_scheme
from model.data import read_split, read_training
from model.export import export
from model.network import Tagger
from model.storage import Storage
from model.train import headline, score
from model.vocab import word_counts
from tagger.artifact import METADATA_FILE
from tagger.conllu import parse
from tagger.evaluation import Report
from tagger.readers import DataFormatError, Sentence, read_tagged, retag
from tagger.schemes import is_span_tagset

CHECKPOINT_IN_EXPORT = "checkpoint.pt"


@dataclass(frozen=True)
class FinetuneOptions:
    held_out: float = 0.2  # share of the corrections kept out of training, to measure the gain on
    epochs: int = 3  # passes, each over the corrections and a fresh share of the original corpora
    lr: float = 5e-4  # Adam's learning rate: a quarter of a first training's, to move the weights a little
    corrections_weight: float = 4.0  # each training correction this many times an epoch
    original_weight: float = 0.1  # share of each original corpus an epoch (times that corpus's own weight)
    max_drop: float = 1.0  # refuse if the original test score falls by more than this, in points (F1 or accuracy)
    seed: int = 1
    threads: int = 1  # torch intra-op threads
    batch_size: int = 0  # sentences per batch; 0 = the model's training batch size

    def __post_init__(self) -> None:
        if not 0.0 <= self.held_out < 1.0:
            raise ValueError(f"held_out is a share of the corrections, in [0, 1); got {self.held_out}")
        if self.epochs < 1 or self.corrections_weight <= 0 or self.original_weight < 0 or self.max_drop < 0:
            raise ValueError(
                "epochs must be >= 1, corrections_weight > 0, original_weight >= 0 and max_drop >= 0; got "
                f"{self.epochs}, {self.corrections_weight}, {self.original_weight}, {self.max_drop}"
            )


@dataclass(frozen=True)
class Comparison:
    """One evaluation set scored before and after (headline: span F1 for span tags, else accuracy)."""

    name: str
    before: Report
    after: Report

    @property
    def change(self) -> float:
        """After minus before, in points."""
        return 100 * (headline(self.after) - headline(self.before))

    def line(self) -> str:
        before, after = 100 * headline(self.before), 100 * headline(self.after)
        return f"{self.name}: {before:.2f} -> {after:.2f} ({self.change:+.2f} points, {self.after.sentences} sentences)"


@dataclass(frozen=True)
class Outcome:
    comparisons: tuple[Comparison, ...]  # held-out corrections first, then the original test set
    trained_on: int  # corrections trained on
    held_out: int
    seconds: float  # training and scoring, not the export
    refused: str | None  # why nothing was written, if it was refused
    checkpoint: Path | None
    export: Path | None


def resolve_checkpoint(path: Path) -> Path:
    """The .pt file to start from: a .pt file, a run folder's best.pt, or an export's checkpoint.pt."""
    if path.is_file():
        return path
    if (path / "best.pt").is_file():
        return path / "best.pt"
    if (path / METADATA_FILE).is_file():
        if (path / CHECKPOINT_IN_EXPORT).is_file():
            return path / CHECKPOINT_IN_EXPORT
        raise ValueError(
            f"{path} is an export folder: it holds the ONNX graph, not the float weights a fine-tune starts from; "
            f"pass the run folder it was exported from (runs/NAME, with best.pt), or put that best.pt in it as "
            f"{CHECKPOINT_IN_EXPORT}"
        )
    raise FileNotFoundError(f"{path}: neither a .pt checkpoint, a run folder with best.pt, nor an export folder")


def read_corrections(path: Path, tags: Sequence[str]) -> list[Sentence]:
    """Corrections as exported by the store, span tags in IOB2; a tag the model lacks is an error naming it.

    IOB2 column files and plain-tag CoNLL-U go through the core's readers; span tags in CoNLL-U sit in
    MISC as `NER=<tag>` (how the service writes them), which is read here.
    """
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".conllu" and "NER=" in text:
        sentences = _misc_ner(text, path)
    else:
        sentences = read_tagged(path, "conllu" if path.suffix == ".conllu" else "auto")
    known = set(tags)
    for number, sentence in enumerate(sentences, start=1):
        unknown = [tag for tag in sentence.tags if tag not in known]
        if unknown or not sentence.tags:
            raise ValueError(f"{path}: sentence {number}: tag {unknown[0] if unknown else None!r} is not the model's")
    return sentences


def _misc_ner(text: str, path: Path) -> list[Sentence]:
    document = parse(text)
    sentences = []
    for sentence in document.sentences:
        tags = []
        for index in sentence.words:
            misc = document.lines[index].split("\t")[9].split("|")
            found = [entry[4:] for entry in misc if entry.startswith("NER=")]
            if not found:
                raise DataFormatError(path, index + 1, "expected NER=<tag> in MISC (column 10)")
            tags.append(found[0])
        sentences.append(Sentence(tuple(sentence.forms), tuple(tags)))
    return sentences


def split(sentences: Sequence[Sentence], share: float, seed: int) -> tuple[list[Sentence], list[Sentence]]:
    """(train, held out): a random `share` held out, at least one when there are two or more."""
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    n = min(len(sentences) - 1, max(1, round(share * len(sentences)))) if share > 0 and len(sentences) > 1 else 0
    held = sorted(order[:n])
    kept = sorted(order[n:])
    return [sentences[i] for i in kept], [sentences[i] for i in held]


def _output_tags(checkpoint: Checkpoint) -> list[str]:
    """The tags the model outputs: IOB2 for span tags (it is trained in its own scheme, BIOES by default)."""
    if tag_scheme(checkpoint.config, checkpoint.vocab) is None:
        return list(checkpoint.vocab.tags)
    labels = sorted({tag[2:] for tag in checkpoint.vocab.tags if tag != "O"})
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in "BI"]


def finetune(
    base: Path, corrections: Path, run: Path, export_to: Path | None, options: FinetuneOptions, weights: Storage
) -> Outcome:
    """Fine-tune `base` on `corrections`; save to the run folder `run` and export to `export_to` unless refused."""
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    rng, generator = random.Random(options.seed), torch.Generator().manual_seed(options.seed)
    checkpoint = load_checkpoint(resolve_checkpoint(base))
    config, vocab, model = checkpoint.config, checkpoint.vocab, checkpoint.model
    train_set, held = split(read_corrections(corrections, _output_tags(checkpoint)), options.held_out, options.seed)
    if not train_set:
        raise ValueError(f"{corrections}: no corrections left to train on after holding out {len(held)}")
    corpora = read_training(config.data)
    test = read_split(config.data, config.data.test) if config.data.test else []
    started = time.perf_counter()
    before = [score(model, config, vocab, s) for s in (held, test) if s]
    _train(model, checkpoint, corpora, train_set, options, rng, generator)
    after = [score(model, config, vocab, s) for s in (held, test) if s]
    names = [n for n, s in (("held-out corrections", held), ("original test set", test)) if s]
    comparisons = tuple(Comparison(n, b, a) for n, b, a in zip(names, before, after, strict=True))
    seconds = time.perf_counter() - started
    refused = _refusal(comparisons[-1], options.max_drop) if test else None
    outcome = Outcome(comparisons, len(train_set), len(held), seconds, refused, None, None)
    _record(run, base, corrections, options, outcome)
    if refused is not None:
        return outcome
    state = {"epoch": options.epochs, "dev_metric": None, "finetuned_from": str(base)}
    save_checkpoint(run / "best.pt", model.eval(), config, vocab, state)
    config.save(run / "config.json")
    if export_to is not None:
        export(run / "best.pt", export_to, weights=weights)
    return Outcome(comparisons, len(train_set), len(held), seconds, None, run / "best.pt", export_to)


def _refusal(test: Comparison, max_drop: float) -> str | None:
    if -test.change <= max_drop:
        return None
    return f"the original test set fell by {-test.change:.2f} points, more than --max-drop {max_drop:.2f}"


def _train(
    model: Tagger,
    checkpoint: Checkpoint,
    corpora: list[list[Sentence]],
    corrections: list[Sentence],
    options: FinetuneOptions,
    rng: random.Random,
    generator: torch.Generator,
) -> None:
    """`options.epochs` passes over the corrections mixed with fresh shares of the original corpora."""
    config, vocab = checkpoint.config, checkpoint.vocab
    everything = [s for corpus in corpora for s in corpus] + corrections
    unk_probs = unk_probabilities(
        vocab, word_counts(retag(everything, "IOB2", config.model.tag_scheme)), config.model.word_dropout
    )
    weights = [c.weight * options.original_weight for c in config.data.train_corpora()]
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr, weight_decay=config.train.weight_decay)
    batch_size = options.batch_size or config.train.batch_size
    span = is_span_tagset(t for s in corrections for t in s.tags)
    for _ in range(options.epochs):
        drawn = draw_epoch([*corpora, corrections], [*weights, options.corrections_weight], rng)
        drawn = recase(drawn, config.train.lowercase, config.train.uppercase, rng)
        sentences = retag(drawn, "IOB2", config.model.tag_scheme) if span else drawn
        model.train()
        for batch in iterate(vocab, sentences, batch_size, rng):
            dropped = drop_words(batch.words, unk_probs, generator)
            scores = model(dropped, *batch.inputs[1:])
            loss = model.loss(scores, batch.tags, batch.lengths)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.clip)
            optimizer.step()
    model.eval()


def _record(run: Path, base: Path, corrections: Path, options: FinetuneOptions, outcome: Outcome) -> None:
    """finetune.json in the run folder: what was done and what it measured, refused or not."""
    run.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "base": str(base),
        "corrections": str(corrections),
        "options": asdict(options),
        "trained_on": outcome.trained_on,
        "held_out": outcome.held_out,
        "seconds": round(outcome.seconds, 1),
        "refused": outcome.refused,
        "scores": {c.name: {"before": c.before.to_dict(), "after": c.after.to_dict()} for c in outcome.comparisons},
    }
    (run / "finetune.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
