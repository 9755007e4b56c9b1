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
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from model.augment import draw_epoch, mention_pool, recase, replace_mentions
from model.batches import drop_words, iterate, unk_probabilities
from model.checkpoint import build_model, decoder_of, load_checkpoint, save_checkpoint
from model.config import Config
from model.data import read_split, read_training
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
    model = build_model(config, vocab, n_frozen_words=len(vocab.words) - trained)
    if vectors is not None:
        matrix = pretrained_matrix(vocab, glove_words, vectors, config.train.seed)
        model.words.weight.data.copy_(torch.from_numpy(matrix[:trained]))
        model.set_frozen(torch.from_numpy(matrix[trained:]))
    return model, vocab


def train(config: Config, out: Path, resume: Path | None = None) -> Path:
    """Train a model as configured into the run folder `out`; returns the path of best.pt."""
    torch.set_num_threads(config.train.threads)
    rng, generator = _seed(config.train.seed)
    corpora = read_training(config.data)
    if config.train.max_sentences:
        corpora = [c[: config.train.max_sentences] for c in corpora]
    weights = [c.weight for c in config.data.train_corpora()]
    everything = [s for corpus in corpora for s in corpus]  # each file once: what the vocabulary is built from
    rate = config.train.mention_replace
    _check_options(config, everything)
    pool = mention_pool(everything) if rate else {}
    # span tags are learned in the model's scheme (BIOES by default), scored in IOB2
    train_set = retag(everything, "IOB2", config.model.tag_scheme)
    resampled = rate > 0 or config.train.lowercase > 0 or config.train.uppercase > 0 or weights != [1.0] * len(weights)
    dev_set = read_split(config.data, config.data.dev)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "config.json")

    state: dict[str, Any] = {"epoch": 0, "best": -1.0, "bad_epochs": 0, "history": []}
    if resume is not None:
        model, _, vocab, state = load_checkpoint(resume)
    else:
        model, vocab = _new_model(config, train_set)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.train.lr_decay, patience=config.train.lr_patience
    )
    if resume is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        generator.set_state(state["generator"])
    unk_probs = unk_probabilities(vocab, word_counts(train_set), config.model.word_dropout)

    while state["epoch"] < config.train.epochs and state["bad_epochs"] < config.train.patience:
        epoch = state["epoch"] + 1
        started = time.perf_counter()
        if resampled:  # a fresh draw of each file's share, swapped mentions and re-cased sentences every epoch
            drawn = replace_mentions(draw_epoch(corpora, weights, rng), pool, rate, rng)
            drawn = recase(drawn, config.train.lowercase, config.train.uppercase, rng)
            train_set = retag(drawn, "IOB2", config.model.tag_scheme)
        loss = _train_epoch(model, vocab, train_set, config, optimizer, rng, generator, unk_probs, epoch)
        report = score(model, config, vocab, dev_set)
        metric = headline(report)
        scheduler.step(metric)
        entry: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": loss,
            "dev_metric": metric,
            "dev_accuracy": report.accuracy,
            "lr": optimizer.param_groups[0]["lr"],
        }
        chosen, chosen_metric = model, metric
        if config.train.average_last:
            chosen, chosen_metric = _average_step(model, metric, config, vocab, dev_set, state, entry)
        improved = chosen_metric > state["best"]
        entry |= {"seconds": round(time.perf_counter() - started, 2), "improved": improved}
        state["history"].append(entry)
        state.update(
            epoch=epoch, best=max(chosen_metric, state["best"]), bad_epochs=0 if improved else state["bad_epochs"] + 1
        )
        with open(out / "log.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")
        mean = (
            f" mean of last {config.train.average_last} {entry['averaged_dev_metric']:.4f}"
            if "averaged_dev_metric" in entry
            else ""
        )
        tqdm.write(f"epoch {epoch}: loss {loss:.4f} dev {metric:.4f}{mean}{' *' if improved else ''}")
        if improved:
            best_state = {"epoch": epoch, "dev_metric": chosen_metric, "averaged": chosen is not model}
            save_checkpoint(out / "best.pt", chosen, config, vocab, best_state)
        resume_state = dict(
            state,
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            python_rng=rng.getstate(),
            torch_rng=torch.get_rng_state(),
            generator=generator.get_state(),
        )
        save_checkpoint(out / "last.pt", model, config, vocab, resume_state)
        plot_learning_curve(state["history"], out / "learning_curve.png")

    _final_scores(config, out)
    return out / "best.pt"


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


def _average_step(
    model: Tagger,
    metric: float,
    config: Config,
    vocab: Vocab,
    dev_set: Sequence[Sentence],
    state: dict[str, Any],
    entry: dict[str, Any],
) -> tuple[Tagger, float]:
    """Remember this epoch's weights; once `average_last` are kept, score their mean on dev too.

    Returns whichever of the epoch's model and the mean scores better, with
    its dev metric. The kept weights live in `state` (and so in last.pt), so a
    resumed run averages the same epochs as an uninterrupted one.
    """
    n = config.train.average_last
    state["recent"] = [*state.get("recent", []), _parameters(model)][-n:]
    if len(state["recent"]) < n:
        return model, metric
    averaged = _averaged(model, state["recent"])
    entry["averaged_dev_metric"] = headline(score(averaged, config, vocab, dev_set))
    return (averaged, entry["averaged_dev_metric"]) if entry["averaged_dev_metric"] > metric else (model, metric)


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


def _train_epoch(
    model: Tagger,
    vocab: Vocab,
    sentences: Sequence[Sentence],
    config: Config,
    optimizer: torch.optim.Optimizer,
    rng: random.Random,
    generator: torch.Generator,
    unk_probs: torch.Tensor,
    epoch: int,
) -> float:
    """One pass over the training set; returns the mean loss per batch."""
    model.train()
    total, batches = 0.0, 0
    words = sum(len(s.tokens) for s in sentences)
    with tqdm(total=words, unit="w", desc=f"epoch {epoch}", mininterval=2.0, leave=False) as bar:
        for batch in iterate(vocab, sentences, config.train.batch_size, rng):
            dropped = drop_words(batch.words, unk_probs, generator)
            scores = model(dropped, batch.cases, batch.chars, batch.lengths)
            loss = model.loss(scores, batch.tags, batch.lengths)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.clip)
            optimizer.step()
            total += loss.item()
            batches += 1
            bar.update(int(batch.lengths.sum()))
            bar.set_postfix(loss=f"{total / batches:.4f}")
    return total / max(batches, 1)


def _final_scores(config: Config, out: Path) -> None:
    """Evaluate best.pt on dev (and test, if configured) into scores.json."""
    model, _, vocab, _ = load_checkpoint(out / "best.pt")
    splits = {"dev": config.data.dev, "test": config.data.test}
    scores = {
        name: score(model, config, vocab, read_split(config.data, path)).to_dict()
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
