"""The training loop: Adam, plateau LR decay, gradient clipping, early stopping, resume.

A run folder holds everything a run produces:

    config.json          the resolved config
    best.pt, last.pt     best checkpoint (by dev metric) and the latest, for resuming
    log.jsonl            one line per epoch
    learning_curve.png   train loss and dev metric per epoch
    scores.json          dev and test evaluation of best.pt

Runs are reproducible: one seed drives batching (Python `random`), dropout
and word dropout (torch), and torch runs deterministic algorithms.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from model.augment import Pool, draw_epoch, mention_pool, recase, replace_mentions
from model.batches import TensorBatch, drop_words, iterate, unk_probabilities
from model.charlm import CharLM
from model.checkpoint import build_model, decoder_of, load_checkpoint, save_checkpoint
from model.config import Config
from model.data import read_split, read_training
from model.distill import Teachers, distillation_loss, load_teachers, student, teacher_marginals
from model.gazetteer_lists import build_gazetteer
from model.network import Tagger
from model.predict import predict_scores
from model.vocab import build_vocab, load_glove, pretrained_matrix, word_counts
from tagger.encoding import Vocab
from tagger.evaluation import Report, evaluate
from tagger.readers import Sentence, retag
from tagger.schemes import is_span_tagset


def score(model: Tagger, config: Config, vocab: Vocab, sentences: Sequence[Sentence]) -> Report:
    """Evaluate a PyTorch model on gold-tagged sentences (IOB2 for span tags), through the shared decoder."""
    decoder = decoder_of(model.crf, config, vocab)
    predicted = [decoder.decode(s).tags for s in predict_scores(model, vocab, sentences)]
    return evaluate([list(s.tags) for s in sentences], predicted)


def headline(report: Report) -> float:
    """The dev metric that selects checkpoints: span F1 for span tag sets, else accuracy."""
    return report.spans.f1 if report.spans is not None else report.accuracy


def _seed(seed: int) -> tuple[random.Random, torch.Generator]:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    generator = torch.Generator().manual_seed(seed)
    return random.Random(seed), generator


def _new_model(config: Config, train: Sequence[Sentence]) -> tuple[Tagger, Vocab]:
    glove_words: list[str] = []
    vectors = None
    if config.model.glove:
        if config.model.word_dim != 50:
            raise ValueError(f"model.word_dim must be 50 with GloVe 6B 50d, got {config.model.word_dim}")
        glove_words, vectors = load_glove(config.model.glove_top_k)
    vocab, trained = build_vocab(train, config.model, glove_words)
    if config.model.gazetteer_lists():
        vocab = dataclasses.replace(vocab, gazetteer=build_gazetteer(config.model.gazetteer_lists()))
    model = build_model(config, vocab, n_frozen_words=len(vocab.words) - trained)
    if vectors is not None:
        matrix = pretrained_matrix(vocab, glove_words, vectors, config.train.seed)
        model.words.weight.data.copy_(torch.from_numpy(matrix[:trained]))
        model.set_frozen(torch.from_numpy(matrix[trained:]))
    return model, vocab


@dataclass
class RunState:
    """Where a run stands: what the epoch loop reads and moves on, and what last.pt keeps to resume it."""

    epoch: int = 0  # epochs done
    best: float = -1.0  # best dev metric so far (of an epoch's weights or of an average)
    bad_epochs: int = 0  # epochs since it last improved
    history: list[dict[str, Any]] = field(default_factory=list)  # one log entry per epoch
    recent: list[dict[str, torch.Tensor]] = field(default_factory=list)  # the last epochs' weights, to average

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "best": self.best, "bad_epochs": self.bad_epochs, "history": self.history} | (
            {"recent": self.recent} if self.recent else {}
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        return cls(data["epoch"], data["best"], data["bad_epochs"], data["history"], data.get("recent", []))


@dataclass
class Run:
    """A run in progress: the model and everything that moves it from one epoch to the next."""

    config: Config
    model: Tagger
    vocab: Vocab
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    rng: random.Random  # batching and augmentation
    generator: torch.Generator  # word dropout
    state: RunState
    char_lm: CharLM | None = None  # the character LM's heads, with train.char_lm (not part of the model)
    teachers: Teachers | None = None  # distillation: the student learns the teachers' distribution, not gold tags

    @property
    def going(self) -> bool:
        train = self.config.train
        return self.state.epoch < train.epochs and self.state.bad_epochs < train.patience

    def resume_state(self) -> dict[str, Any]:
        """What last.pt holds beside the weights, so that resuming continues exactly."""
        return (
            self.state.to_dict()
            | {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "python_rng": self.rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "generator": self.generator.get_state(),
            }
            | ({"char_lm": self.char_lm.state_dict()} if self.char_lm is not None else {})
        )


@dataclass(frozen=True)
class TrainingData:
    """The training corpora and what each epoch draws from them, and the dev set that picks the best epoch."""

    corpora: list[list[Sentence]]  # IOB2 for span tags
    weights: list[float]
    pool: Pool  # mentions by type, for mention replacement
    full: list[Sentence]  # every file once, in the model's tag scheme: the vocabulary and unk rates come from it
    dev: list[Sentence]
    resampled: bool  # whether epochs differ from `full` (weights, mention replacement, re-casing)

    @classmethod
    def read(cls, config: Config) -> TrainingData:
        corpora = read_training(config.data)
        if config.train.max_sentences:
            corpora = [c[: config.train.max_sentences] for c in corpora]
        weights = [c.weight for c in config.data.train_corpora()]
        everything = [s for corpus in corpora for s in corpus]
        _check_options(config, everything)
        t = config.train
        return cls(
            corpora=corpora,
            weights=weights,
            pool=mention_pool(everything) if t.mention_replace else {},
            # span tags are learned in the model's scheme (BIOES by default), scored in IOB2
            full=retag(everything, "IOB2", config.model.tag_scheme),
            dev=read_split(config.data, config.data.dev),
            resampled=bool(t.mention_replace or t.lowercase or t.uppercase) or weights != [1.0] * len(weights),
        )

    def epoch(self, config: Config, rng: random.Random) -> list[Sentence]:
        """This epoch's sentences: each file's share, swapped mentions and re-cased sentences, drawn afresh."""
        if not self.resampled:
            return self.full
        t = config.train
        drawn = replace_mentions(draw_epoch(self.corpora, self.weights, rng), self.pool, t.mention_replace, rng)
        return retag(recase(drawn, t.lowercase, t.uppercase, rng), "IOB2", config.model.tag_scheme)


def train(config: Config, out: Path, resume: Path | None = None, teachers: Sequence[Path] = ()) -> Path:
    """Train a model as configured into the run folder `out`; returns the path of best.pt.

    With `teachers` (checkpoints with a CRF), the model is a student distilled from them (`model.distill`).
    """
    torch.set_num_threads(config.train.threads)
    rng, generator = _seed(config.train.seed)
    data = TrainingData.read(config)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "config.json")
    if teachers:
        (out / "teachers.json").write_text(json.dumps([str(t) for t in teachers], indent=1) + "\n", encoding="utf-8")
    run = _start(config, data, resume, rng, generator, teachers)
    unk_probs = unk_probabilities(run.vocab, word_counts(data.full), config.model.word_dropout)
    while run.going:
        _epoch(run, data, unk_probs, out)
    _final_scores(config, out)
    return out / "best.pt"


def _start(
    config: Config,
    data: TrainingData,
    resume: Path | None,
    rng: random.Random,
    generator: torch.Generator,
    teacher_paths: Sequence[Path] = (),
) -> Run:
    """A new run's model and optimizer, or a stopped run's as last.pt left them."""
    teachers, loaded = load_teachers(teacher_paths) if teacher_paths else (None, None)
    if teachers is not None and not config.model.crf:
        raise ValueError("distillation trains a CRF student on the teachers' CRF distribution: set model.crf true")
    if resume is not None:
        checkpoint = load_checkpoint(resume)
        model, vocab, saved = checkpoint.model, checkpoint.vocab, checkpoint.state
    elif loaded is not None:
        model, vocab = student(config, loaded)
    else:
        model, vocab = _new_model(config, data.full)
    char_lm = _char_lm(config, model, vocab)
    parameters = [*model.parameters(), *(char_lm.parameters() if char_lm is not None else ())]
    optimizer = torch.optim.Adam(parameters, lr=config.train.lr, weight_decay=config.train.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.train.lr_decay, patience=config.train.lr_patience
    )
    if resume is None:
        return Run(config, model, vocab, optimizer, scheduler, rng, generator, RunState(), char_lm, teachers)
    if char_lm is not None:
        if "char_lm" not in saved:
            raise ValueError(f"{resume}: trained without train.char_lm, so it cannot resume with it")
        char_lm.load_state_dict(saved["char_lm"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    rng.setstate(saved["python_rng"])
    torch.set_rng_state(saved["torch_rng"])
    generator.set_state(saved["generator"])
    state = RunState.from_dict(saved)
    return Run(config, model, vocab, optimizer, scheduler, rng, generator, state, char_lm, teachers)


def _char_lm(config: Config, model: Tagger, vocab: Vocab) -> CharLM | None:
    """The character LM's heads when train.char_lm asks for them (seeded like the model: built right after it)."""
    if not config.train.char_lm:
        return None
    if config.train.char_lm < 0:
        raise ValueError(
            f"train.char_lm is the character LM loss's weight, 0 (off) or above; got {config.train.char_lm}"
        )
    return CharLM(config.model.char_filters, len(vocab.chars), config.model.char_kernel // 2)


def _epoch(run: Run, data: TrainingData, unk_probs: torch.Tensor, out: Path) -> None:
    """Train one epoch, score it on dev, keep best.pt and last.pt, log it."""
    config, state = run.config, run.state
    epoch, started = state.epoch + 1, time.perf_counter()
    loss = _train_epoch(run, data.epoch(config, run.rng), unk_probs, epoch)
    report = score(run.model, config, run.vocab, data.dev)
    metric = headline(report)
    run.scheduler.step(metric)
    entry: dict[str, Any] = {
        "epoch": epoch,
        "train_loss": loss,
        "dev_metric": metric,
        "dev_accuracy": report.accuracy,
        "lr": run.optimizer.param_groups[0]["lr"],
    }
    chosen, chosen_metric = run.model, metric
    if config.train.average_last:
        chosen, chosen_metric = _average_step(run, metric, data.dev, entry)
    improved = chosen_metric > state.best
    entry |= {"seconds": round(time.perf_counter() - started, 2), "improved": improved}
    state.history.append(entry)
    state.epoch, state.best = epoch, max(chosen_metric, state.best)
    state.bad_epochs = 0 if improved else state.bad_epochs + 1
    with open(out / "log.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
    mean = (
        f" mean of last {config.train.average_last} {entry['averaged_dev_metric']:.4f}"
        if "averaged_dev_metric" in entry
        else ""
    )
    tqdm.write(f"epoch {epoch}: loss {loss:.4f} dev {metric:.4f}{mean}{' *' if improved else ''}")
    if improved:
        best_state = {"epoch": epoch, "dev_metric": chosen_metric, "averaged": chosen is not run.model}
        save_checkpoint(out / "best.pt", chosen, config, run.vocab, best_state)
    save_checkpoint(out / "last.pt", run.model, config, run.vocab, run.resume_state())
    plot_learning_curve(state.history, out / "learning_curve.png")


def _check_options(config: Config, train_set: Sequence[Sentence]) -> None:
    """Refuse training options outside their range before any work is done."""
    rate = config.train.mention_replace
    for name in ("mention_replace", "lowercase", "uppercase"):
        value = getattr(config.train, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"train.{name} is a probability, between 0 and 1; got {value}")
    if config.train.lowercase + config.train.uppercase > 1.0:
        total = config.train.lowercase + config.train.uppercase
        raise ValueError(f"train.lowercase + train.uppercase is a probability, at most 1; got {total}")
    if rate and not is_span_tagset(t for s in train_set for t in s.tags):
        raise ValueError(f"train.mention_replace is {rate}, but the training data has no span (entity) tags")
    if config.train.average_last == 1 or config.train.average_last < 0:
        raise ValueError(f"train.average_last must be 0 (off) or at least 2 epochs; got {config.train.average_last}")


def _average_step(run: Run, metric: float, dev_set: Sequence[Sentence], entry: dict[str, Any]) -> tuple[Tagger, float]:
    """Remember this epoch's weights; once `average_last` are kept, score their mean on dev too.

    Returns whichever of the epoch's model and the mean scores better, with
    its dev metric. The kept weights live in the run state (and so in
    last.pt), so a resumed run averages the same epochs as an uninterrupted one.
    """
    n = run.config.train.average_last
    run.state.recent = [*run.state.recent, _parameters(run.model)][-n:]
    if len(run.state.recent) < n:
        return run.model, metric
    averaged = _averaged(run.model, run.state.recent)
    entry["averaged_dev_metric"] = headline(score(averaged, run.config, run.vocab, dev_set))
    if entry["averaged_dev_metric"] > metric:
        return averaged, entry["averaged_dev_metric"]
    return run.model, metric


def _parameters(model: Tagger) -> dict[str, torch.Tensor]:
    """A copy of the trained weights (not the buffers: frozen vectors and constraints never change)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _averaged(model: Tagger, snapshots: Sequence[dict[str, torch.Tensor]]) -> Tagger:
    """A copy of `model` (in eval mode) whose weights are the mean of `snapshots`.

    The mean of the last few epochs' weights sits nearer the middle of the
    region the optimizer wanders in late in training, and often scores better
    than any single epoch (checkpoint averaging, as in neural MT).
    """
    averaged = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in averaged.named_parameters():
            p.copy_(torch.stack([s[name] for s in snapshots]).mean(dim=0))
    return averaged.eval()


def _train_epoch(run: Run, sentences: Sequence[Sentence], unk_probs: torch.Tensor, epoch: int) -> float:
    """One pass over the epoch's sentences; returns the mean loss per batch."""
    model, clip = run.model, run.config.train.clip
    model.train()
    total, batches = 0.0, 0
    words = sum(len(s.tokens) for s in sentences)
    with tqdm(total=words, unit="w", desc=f"epoch {epoch}", mininterval=2.0, leave=False) as bar:
        for batch in iterate(run.vocab, sentences, run.config.train.batch_size, run.rng):
            dropped = drop_words(batch.words, unk_probs, run.generator)
            scores, char_states = model.scores_and_char_states(dropped, *batch.inputs[1:])
            loss = _loss(run, batch, scores)
            if run.char_lm is not None:
                loss = loss + run.config.train.char_lm * run.char_lm(char_states, batch.chars)
            run.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in run.optimizer.param_groups for p in g["params"]], clip)
            run.optimizer.step()
            total += loss.item()
            batches += 1
            bar.update(int(batch.lengths.sum()))
            bar.set_postfix(loss=f"{total / batches:.4f}")
    return total / max(batches, 1)


def _loss(run: Run, batch: TensorBatch, scores: torch.Tensor) -> torch.Tensor:
    """The tagging loss per real token: against the gold tags, or against the teachers' CRF distribution."""
    if run.teachers is None:
        return run.model.loss(scores, batch.tags, batch.lengths)
    assert run.model.crf is not None
    unary, pairwise = teacher_marginals(run.teachers.crf, run.teachers.emissions(batch.inputs), batch.lengths)
    return distillation_loss(run.model.crf, scores, batch.lengths, unary, pairwise)


def _final_scores(config: Config, out: Path) -> None:
    """Evaluate best.pt on dev (and test, if configured) into scores.json."""
    best = load_checkpoint(out / "best.pt")
    splits = {"dev": config.data.dev, "test": config.data.test}
    scores = {
        name: score(best.model, config, best.vocab, read_split(config.data, path)).to_dict()
        for name, path in splits.items()
        if path
    }
    (out / "scores.json").write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
    for name, report in scores.items():
        tqdm.write(
            f"best.pt {name}: accuracy {report['accuracy']:.4f}" + (f" f1 {report['f1']:.4f}" if "f1" in report else "")
        )


def plot_learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    """Train loss and dev metric per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, loss_axis = plt.subplots(figsize=(6, 3.5))
    loss_axis.plot(epochs, [h["train_loss"] for h in history], "o-", color="tab:blue", label="train loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("train loss", color="tab:blue")
    dev_axis = loss_axis.twinx()
    dev_axis.plot(epochs, [h["dev_metric"] for h in history], "s-", color="tab:red", label="dev metric")
    dev_axis.set_ylabel("dev metric", color="tab:red")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
