"""Score predicted tags against gold: token accuracy, per-tag and span-level P/R/F1.

Span scores match conlleval and seqeval's default mode: chunks are read from
gold and predicted tags independently with `schemes.to_spans`, and a
predicted chunk counts only if label, start and end all match a gold chunk.
Undefined ratios (no predictions, no gold) are 0.0 rather than errors, as in
seqeval with zero_division=0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tagger.schemes import Scheme, Span, detect_scheme, is_span_tagset, to_spans

TOP_CONFUSIONS = 20


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 as fractions in [0, 1]; support is the gold count."""

    precision: float
    recall: float
    f1: float
    support: int

    @classmethod
    def from_counts(cls, correct: int, predicted: int, gold: int) -> PRF:
        """PRF.from_counts(correct=1, predicted=2, gold=4) -> PRF(0.5, 0.25, 0.333..., 4)."""
        precision = correct / predicted if predicted else 0.0
        recall = correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1, gold)

    def to_dict(self) -> dict[str, float | int]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support}


@dataclass(frozen=True)
class Report:
    """Everything `evaluate` measured; `to_dict` for JSON, `format` for people."""

    sentences: int
    tokens: int
    accuracy: float
    per_tag: dict[str, PRF]  # token level, by tag
    spans: PRF | None  # micro-averaged over chunks; None for a non-span tag set (UPOS)
    per_type: dict[str, PRF]  # by chunk label; {} for a non-span tag set
    confusions: list[tuple[str, str, int]]  # (gold, predicted, count), gold != predicted, most frequent first
    scheme: Scheme | None = None  # the scheme chunks were read with

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; span keys (precision, recall, f1, support, per_type) only for span tag sets."""
        out: dict[str, Any] = {"sentences": self.sentences, "tokens": self.tokens, "accuracy": self.accuracy}
        if self.spans is not None:
            out |= {"scheme": self.scheme, **self.spans.to_dict()}
            out["per_type"] = {label: prf.to_dict() for label, prf in self.per_type.items()}
        out["per_tag"] = {tag: prf.to_dict() for tag, prf in self.per_tag.items()}
        out["confusions"] = [
            {"gold": gold, "predicted": predicted, "count": count}
            for gold, predicted, count in self.confusions[:TOP_CONFUSIONS]
        ]
        return out

    def format(self) -> str:
        """A plain-text table: accuracy, per-tag scores, span scores, top confusions."""
        lines = [f"sentences {self.sentences}  tokens {self.tokens}  accuracy {self.accuracy:.4f}", ""]
        lines += _table("tag", self.per_tag)
        if self.spans is not None:
            lines += ["", *_table(f"spans ({self.scheme})", {"(all)": self.spans, **self.per_type})]
        if self.confusions:
            lines += ["", "top confusions (gold -> predicted: count)"]
            lines += [f"  {g} -> {p}: {n}" for g, p, n in self.confusions[:TOP_CONFUSIONS]]
        return "\n".join(lines)


def _table(title: str, rows: dict[str, PRF]) -> list[str]:
    width = max(len(title), *(len(name) for name in rows)) if rows else len(title)
    header = f"{title:<{width}}  precision  recall      f1  support"
    body = [
        f"{name:<{width}}  {prf.precision:9.4f}  {prf.recall:6.4f}  {prf.f1:6.4f}  {prf.support:7d}"
        for name, prf in rows.items()
    ]
    return [header, *body]


def _check_aligned(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"expected as many predicted sentences as gold ones ({len(gold)}), got {len(predicted)}")
    for index, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {index}: gold has {len(g)} tags, predicted has {len(p)}")


def _span_scores(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], scheme: Scheme
) -> tuple[PRF, dict[str, PRF]]:
    """Micro-averaged and per-label chunk scores."""
    correct: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_predicted: Counter[str] = Counter()
    for gold_tags, predicted_tags in zip(gold, predicted, strict=True):
        gold_spans: set[Span] = set(to_spans(gold_tags, scheme))
        predicted_spans: set[Span] = set(to_spans(predicted_tags, scheme))
        n_gold.update(span.label for span in gold_spans)
        n_predicted.update(span.label for span in predicted_spans)
        correct.update(span.label for span in gold_spans & predicted_spans)
    per_type = {
        label: PRF.from_counts(correct[label], n_predicted[label], n_gold[label])
        for label in sorted(n_gold.keys() | n_predicted.keys())
    }
    overall = PRF.from_counts(correct.total(), n_predicted.total(), n_gold.total())
    return overall, per_type


def evaluate(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], scheme: Scheme | None = None) -> Report:
    """Compare predicted tag sequences with gold ones, sentence by sentence.

    Span scores are computed when the gold tags form a span tag set ("O",
    "B-PER", ...), reading chunks with `scheme` (detected from gold when None).
    evaluate([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]]) has accuracy 2/3
    and span F1 0.0: the predicted chunk ends one token early.
    """
    _check_aligned(gold, predicted)
    aligned = zip(gold, predicted, strict=True)
    pairs = Counter((g, p) for gold_tags, pred_tags in aligned for g, p in zip(gold_tags, pred_tags, strict=True))
    gold_counts: Counter[str] = Counter()
    predicted_counts: Counter[str] = Counter()
    for (g, p), count in pairs.items():
        gold_counts[g] += count
        predicted_counts[p] += count
    tokens = pairs.total()
    per_tag = {
        tag: PRF.from_counts(pairs[tag, tag], predicted_counts[tag], gold_counts[tag])
        for tag in sorted(gold_counts.keys() | predicted_counts.keys())
    }
    confusions = sorted(((g, p, n) for (g, p), n in pairs.items() if g != p), key=lambda c: (-c[2], c[0], c[1]))
    spans: PRF | None = None
    per_type: dict[str, PRF] = {}
    if is_span_tagset(gold_counts):
        scheme = scheme or detect_scheme(gold)
        spans, per_type = _span_scores(gold, predicted, scheme)
    elif scheme is not None:
        example = next(tag for tag in gold_counts if tag != "O")
        raise ValueError(f"scheme={scheme!r} given, but gold tags such as {example!r} are not span tags")
    return Report(
        sentences=len(gold),
        tokens=tokens,
        accuracy=sum(pairs[tag, tag] for tag in gold_counts) / tokens if tokens else 0.0,
        per_tag=per_tag,
        spans=spans,
        per_type=per_type,
        confusions=confusions,
        scheme=scheme,
    )
