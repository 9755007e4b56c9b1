"""Tag scores -> tags, probabilities and spans: the one decoder training and serving share.

The exported graph returns per-token scores (emissions); everything after that
happens here, in numpy, so an evaluation on a checkpoint and the service on an
export cannot drift apart.

Two ways to decode, chosen by the model:
- plain tag sets (UPOS) without a CRF: per-token argmax of a softmax;
- span tag sets (IOB2/BIOES), or any model with a CRF: a linear-chain model
  over the sentence, decoded by Viterbi, with per-token probabilities from
  forward-backward marginals. The CRF's learned transition scores enter here;
  without a CRF the emissions are log-softmax scores and transitions are 0.
  Either way the tag scheme's constraints (no `I-X` after `O` in IOB2, ...)
  are hard: forbidden transitions score `FORBIDDEN`, so no invalid sequence is
  ever returned.

Span tag sets are decoded in the model's own scheme (BIOES, say) and returned
in `output_scheme` (IOB2); the probability of an IOB2 tag is the sum of the
marginals of the model tags that map to it (`S-PER` and `B-PER` -> `B-PER`).
Each span gets its exact probability under the model: the mass of all tag
sequences in which exactly that span (that label, those boundaries) occurs.

Everything runs on whole batches (B, T, K) at once: the loops are over time
steps only, so decoding stays cheap next to the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from tagger.schemes import Scheme, Span, allowed_ends, allowed_starts, allowed_transitions, to_spans

FORBIDDEN = -1e4  # log-score of a forbidden transition: exp() is exactly 0, and no NaN from -inf - -inf


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, stable for large scores."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # type: ignore[no-any-return]


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.exp(x - top).sum(axis=axis))  # type: ignore[no-any-return]


class ScoredSpan(NamedTuple):
    """A labelled token range [start, end) with its probability under the model."""

    label: str
    start: int
    end: int
    score: float


class Tagged(NamedTuple):
    """What a request receives for one sentence: its tags and spans, and probabilities when it asked for them.

    A `Decoded` without the tag ids, and without the arrays unless asked for
    (scores or top_k): they are most of what sending a result from an
    inference process to the server costs.
    """

    tags: list[str]  # in the output scheme
    spans: tuple[ScoredSpan, ...]
    probs: np.ndarray | None = None  # (T,) probability of each chosen tag
    marginals: np.ndarray | None = None  # (T, len(output_tags)) probability of every output tag
    confidence: float | None = None  # the sentence's, always sent (one float): see `Decoded.confidence`


def top_k(marginals: np.ndarray, output_tags: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """Per token, the k most probable output tags, best first.

    Example: marginals [[0.2, 0.8]], output_tags ("O", "B-PER"), k 1 -> [[("B-PER", 0.8)]].
    """
    if k <= 0:
        return []
    order = np.argsort(-marginals, axis=-1, kind="stable")[:, :k]
    return [[(output_tags[j], float(row[j])) for j in ks] for row, ks in zip(marginals, order, strict=True)]


@dataclass(frozen=True)
class Decoded:
    """One sentence, decoded: tags in the output scheme and what the response may need."""

    ids: np.ndarray  # (T,) int64 ids of the chosen tags in the model's tag set
    tags: list[str]  # chosen tags, in the output scheme
    probs: np.ndarray  # (T,) float probability of each chosen (output) tag
    marginals: np.ndarray  # (T, len(output_tags)) probability of every output tag
    output_tags: tuple[str, ...]
    spans: list[ScoredSpan] = field(default_factory=list)
    # How sure the model is of the whole sentence, for the review queue (least confident first). Structured
    # decoding: the probability of the Viterbi path under the model, P(tags | tokens), which a single doubtful
    # token or a span's doubtful boundary lowers. Softmax (plain tags): the lowest token probability, since the
    # tokens are decoded independently and one wrong token is what a person would correct.
    confidence: float = 1.0

    def top_k(self, k: int) -> list[list[tuple[str, float]]]:
        """Per token, the k most probable output tags, best first."""
        return top_k(self.marginals, self.output_tags, k)

    def tagged(self, details: bool = True) -> Tagged:
        """What a request receives: probabilities only with `details`."""
        if details:
            return Tagged(self.tags, tuple(self.spans), self.probs, self.marginals, self.confidence)
        return Tagged(self.tags, tuple(self.spans), confidence=self.confidence)


@dataclass(frozen=True)
class CrfScores:
    """Learned linear-chain scores: transitions[i, j] for tag i followed by tag j, and sentence start/end."""

    transitions: np.ndarray  # (K, K)
    start: np.ndarray  # (K,)
    end: np.ndarray  # (K,)

    def to_dict(self) -> dict[str, Any]:
        return {"transitions": self.transitions.tolist(), "start": self.start.tolist(), "end": self.end.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrfScores:
        return cls(
            transitions=np.asarray(data["transitions"], dtype=np.float64),
            start=np.asarray(data["start"], dtype=np.float64),
            end=np.asarray(data["end"], dtype=np.float64),
        )


def constraint_scores(tags: Sequence[str], scheme: Scheme | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transitions, start, end) with 0 where the scheme allows a move and FORBIDDEN where it does not."""
    k = len(tags)
    if scheme is None:
        return np.zeros((k, k)), np.zeros(k), np.zeros(k)
    transitions = np.full((k, k), FORBIDDEN)
    for i, j in allowed_transitions(tags, scheme):
        transitions[i, j] = 0.0
    start, end = np.full(k, FORBIDDEN), np.full(k, FORBIDDEN)
    start[allowed_starts(tags, scheme)] = 0.0
    end[allowed_ends(tags, scheme)] = 0.0
    return transitions, start, end


def _output_tags(tags: Sequence[str], scheme: Scheme | None, output: Scheme) -> tuple[tuple[str, ...], np.ndarray]:
    """The output tag set and, per model tag, the index of the output tag it becomes."""
    if scheme is None or scheme == output:
        return tuple(tags), np.arange(len(tags))
    if (scheme, output) != ("BIOES", "IOB2"):
        raise ValueError(f"cannot decode {scheme} tags into {output}; models are trained in IOB2 or BIOES")
    # BIOES -> IOB2 tag by tag: S-X and B-X open a span (B-X), I-X and E-X continue it (I-X)
    mapped = [t if t == "O" else ("B-" if t[0] in "BS" else "I-") + t[2:] for t in tags]
    out = tuple(dict.fromkeys(mapped))
    return out, np.array([out.index(m) for m in mapped])


class Decoder:
    """Decodes a model's scores; built once per model from its tag set, scheme and optional CRF."""

    def __init__(
        self,
        tags: Sequence[str],
        scheme: Scheme | None = None,
        crf: CrfScores | None = None,
        output_scheme: Scheme = "IOB2",
    ) -> None:
        self.tags = tuple(tags)
        self.scheme = scheme
        self.crf = crf
        self.structured = scheme is not None or crf is not None
        transitions, start, end = constraint_scores(self.tags, scheme)
        if crf is not None:
            if crf.transitions.shape != (len(tags), len(tags)):
                raise ValueError(f"CRF transitions must be {(len(tags),) * 2}, got {crf.transitions.shape}")
            transitions, start, end = transitions + crf.transitions, start + crf.start, end + crf.end
        self.transitions, self.start, self.end = transitions, start, end
        self.output_tags, self._to_output = _output_tags(self.tags, scheme, output_scheme)
        self.output_scheme: Scheme | None = output_scheme if scheme is not None else None
        merge = np.zeros((len(self.tags), len(self.output_tags)))
        merge[np.arange(len(self.tags)), self._to_output] = 1.0
        self._merge: np.ndarray | None = None if self.output_tags == self.tags else merge
        # tags that would continue a span labelled X (IOB2: I-X), for exact span probabilities
        self._continues: dict[str, np.ndarray] = {}
        if scheme == "IOB2":
            for label in {t[2:] for t in self.tags if t != "O"}:
                self._continues[label] = np.array([t == f"I-{label}" for t in self.tags])

    def decode(self, scores: np.ndarray) -> Decoded:
        """Decode one sentence's scores (T, K)."""
        if scores.ndim != 2 or scores.shape[1] != len(self.tags):
            raise ValueError(f"expected scores of shape (T, {len(self.tags)}), got {scores.shape}")
        return self.decode_batch(scores[None], np.array([len(scores)]))[0]

    def decode_batch(self, scores: np.ndarray, lengths: np.ndarray) -> list[Decoded]:
        """Decode a padded batch (B, T, K) of sentences with the given lengths; padding is ignored."""
        if scores.ndim != 3 or scores.shape[2] != len(self.tags):
            raise ValueError(f"expected scores of shape (B, T, {len(self.tags)}), got {scores.shape}")
        scores = scores.astype(np.float64)
        lengths = np.asarray(lengths, dtype=np.int64)
        if not self.structured:
            probs = softmax(scores)
            ids = probs.argmax(axis=-1)  # (B, T), the whole batch at once
            return [
                self._decoded(ids[b, :n], probs[b, :n], [], float(probs[b, :n].max(axis=-1).min()))
                for b, n in enumerate(lengths.tolist())
            ]
        emissions = scores if self.crf is not None else log_softmax(scores)
        alpha, beta, log_z = self._forward_backward(emissions, lengths)
        paths = self._viterbi(emissions, lengths)
        out = []
        for b, n in enumerate(lengths):
            marginals = np.exp(alpha[b, :n] + beta[b, :n] - log_z[b])
            ids = paths[b]
            spans = self._spans(ids, emissions[b, :n], alpha[b, :n], beta[b, :n], float(log_z[b]))
            out.append(self._decoded(ids, marginals, spans, self._path_probability(ids, emissions[b], log_z[b])))
        return out

    def _path_probability(self, ids: np.ndarray, emissions: np.ndarray, log_z: float) -> float:
        """P(path | sentence) = exp(score(path) - log Z): start, emissions, transitions and end along `ids`."""
        n = len(ids)
        score = self.start[ids[0]] + emissions[np.arange(n), ids].sum() + self.end[ids[-1]]
        score += self.transitions[ids[:-1], ids[1:]].sum()
        return min(1.0, float(np.exp(score - log_z)))

    def _decoded(self, ids: np.ndarray, model_probs: np.ndarray, spans: list[ScoredSpan], confidence: float) -> Decoded:
        marginals = model_probs if self._merge is None else model_probs @ self._merge
        out_ids = self._to_output[ids]
        return Decoded(
            ids=ids,
            tags=[self.output_tags[i] for i in out_ids],
            probs=marginals[np.arange(len(ids)), out_ids],
            marginals=marginals,
            output_tags=self.output_tags,
            spans=spans,
            confidence=confidence,
        )

    def _forward_backward(
        self, emissions: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log forward (alpha, emission included) and backward (beta, emission excluded) scores, log Z.

        Computed by the scaled recursions in probability space: a step is a (B, K) x (K, K) matrix
        product where the log-space form needs a logsumexp over (B, K, K). Each step is normalized and its
        log scale kept, so nothing under- or overflows; a move the constraints forbid (-1e4) has
        probability 0, so its log score is -inf, not -1e4.
        """
        b, t, k = emissions.shape
        peak = emissions.max(axis=2)  # (B, T)
        gain = np.exp(emissions - peak[:, :, None])  # (B, T, K), at most 1
        moves = np.exp(self.transitions)  # (K, K)
        start, end = np.exp(self.start), np.exp(self.end)  # (K,)
        last, rows = lengths - 1, np.arange(b)
        alpha_hat, alpha_scale = np.empty((b, t, k)), np.empty((b, t))  # normalized forward, its log scale
        beta_hat, beta_scale = np.empty((b, t, k)), np.empty((b, t))
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf; padding may divide by 0
            a = start * gain[:, 0]
            total = a.sum(axis=1)
            alpha_hat[:, 0], alpha_scale[:, 0] = a / total[:, None], np.log(total) + peak[:, 0]
            for i in range(1, t):
                a = (alpha_hat[:, i - 1] @ moves) * gain[:, i]  # (B, K)
                total = a.sum(axis=1)
                alpha_hat[:, i] = a / total[:, None]
                alpha_scale[:, i] = alpha_scale[:, i - 1] + np.log(total) + peak[:, i]
            end_total = end.sum()
            end_hat, end_scale = end / end_total, np.log(end_total)
            beta_hat[:, t - 1], beta_scale[:, t - 1] = end_hat, end_scale
            for i in range(t - 2, -1, -1):
                step = (gain[:, i + 1] * beta_hat[:, i + 1]) @ moves.T  # (B, K)
                total = step.sum(axis=1)
                ends = last == i  # a sentence's last token: beta is the end score
                beta_hat[:, i] = np.where(ends[:, None], end_hat, step / total[:, None])
                beta_scale[:, i] = np.where(ends, end_scale, beta_scale[:, i + 1] + np.log(total) + peak[:, i + 1])
            log_z = np.log((alpha_hat[rows, last] * end).sum(axis=1)) + alpha_scale[rows, last]
            alpha = np.log(alpha_hat) + alpha_scale[:, :, None]
            beta = np.log(beta_hat) + beta_scale[:, :, None]
        return alpha, beta, log_z

    def _viterbi(self, emissions: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
        b, t, k = emissions.shape
        delta = self.start + emissions[:, 0]
        back = np.zeros((b, t, k), dtype=np.int64)
        history = [delta]
        for i in range(1, t):
            candidates = delta[:, :, None] + self.transitions  # (B, from, to)
            back[:, i] = candidates.argmax(axis=1)
            delta = candidates.max(axis=1) + emissions[:, i]
            history.append(delta)
        paths = []
        for s, n in enumerate(lengths):
            path = np.empty(n, dtype=np.int64)
            path[n - 1] = int((history[n - 1][s] + self.end).argmax())
            for i in range(n - 1, 0, -1):
                path[i - 1] = back[s, i, path[i]]
            paths.append(path)
        return paths

    def _spans(
        self, ids: np.ndarray, emissions: np.ndarray, alpha: np.ndarray, beta: np.ndarray, log_z: float
    ) -> list[ScoredSpan]:
        """The decoded spans, each with P(that exact span) from the forward-backward scores."""
        if self.scheme is None:
            return []
        spans: list[ScoredSpan] = []
        n = len(ids)
        for span in to_spans([self.tags[i] for i in ids], self.scheme):
            i, j = span.start, span.end
            inside = sum(self.transitions[ids[t - 1], ids[t]] + emissions[t, ids[t]] for t in range(i + 1, j))
            if j < n and span.label in self._continues:
                # the span must end here: the next tag is anything but one that continues it
                nxt = self.transitions[ids[j - 1]] + emissions[j] + beta[j]
                closing = float(logsumexp(np.where(self._continues[span.label], -np.inf, nxt), axis=0))
            else:
                closing = float(beta[j - 1, ids[j - 1]])
            log_p = float(alpha[i, ids[i]]) + float(inside) + closing - log_z
            spans.append(ScoredSpan(span.label, i, j, min(1.0, float(np.exp(log_p)))))
        return spans


def decode(scores: np.ndarray, tagset: Sequence[str]) -> Decoded:
    """Per-token argmax decoding of one sentence's scores (T, K) for a plain tag set.

    Example: scores [[2, 0], [0, 1]] with tagset ["A", "B"] -> tags ["A", "B"].
    """
    return Decoder(tagset).decode(scores)


__all__ = [
    "CrfScores",
    "Decoded",
    "Decoder",
    "ScoredSpan",
    "Span",
    "Tagged",
    "constraint_scores",
    "decode",
    "softmax",
    "top_k",
]
