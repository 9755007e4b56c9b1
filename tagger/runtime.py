"""An export folder loaded into ONNX Runtime: the path every served tag takes.

`tagger evaluate` and `tagger predict` on an export use this same object, so
the figures they print are the figures the service delivers.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from tagger.artifact import (
    INPUT_NAMES,
    MODEL_FILE,
    OUTPUT_NAMES,
    ArtifactError,
    Metadata,
    load_decoder,
    load_export,
)
from tagger.decoding import Decoded, Decoder
from tagger.encoding import Batch, Vocab, length_sorted
from tagger.gazetteer import INPUT_NAME as GAZETTEER_INPUT

# Batch shapes run once before a model reports ready, so first requests do not pay for ORT's lazy set-up.
WARMUP_SIZES = (1, 8, 32, 64)
WARMUP_LENGTHS = (1, 8, 32, 128)


@dataclass(frozen=True)
class Runtime:
    """One model ready to run: metadata, vocabularies, an ONNX Runtime session and its decoder."""

    name: str
    folder: Path
    metadata: Metadata
    vocab: Vocab
    session: ort.InferenceSession
    decoder: Decoder

    def run(self, batch: Batch) -> np.ndarray:
        """Scores (B, T, K) float32 for an encoded batch; padded positions are meaningless."""
        if (batch.gazetteer is None) != (self.vocab.gazetteer is None):
            raise ValueError(
                f"model {self.name!r} reads {'name-list codes' if self.vocab.gazetteer else 'no name-list codes'}, "
                f"but the batch {'lacks' if batch.gazetteer is None else 'has'} them: encode its sentences with this "
                "model's vocabulary and keep `Encoded.gazetteer` on the way to `pad`"
            )
        (scores,) = self.session.run(list(OUTPUT_NAMES), batch.inputs())
        return scores  # type: ignore[no-any-return]

    def tag(self, batch: Batch) -> list[Decoded]:
        """Run and decode a padded batch: one `Decoded` per sentence, in batch order."""
        return self.decoder.decode_batch(self.run(batch), batch.lengths)

    def warm_up(self) -> float:
        """Run the grid of batch shapes (WARMUP_SIZES x WARMUP_LENGTHS) once; returns the padded tokens per second
        of its largest shapes (each at least 1,024 tokens), run a second time: a first speed estimate."""
        for size, length in itertools.product(WARMUP_SIZES, WARMUP_LENGTHS):
            self.tag(self.vocab.encode([["warm"] * length] * size))
        large = [(s, n) for s, n in itertools.product(WARMUP_SIZES, WARMUP_LENGTHS) if s * n >= 1024]
        started = time.perf_counter()
        for size, length in large:
            self.tag(self.vocab.encode([["warm"] * length] * size))
        return sum(s * n for s, n in large) / max(time.perf_counter() - started, 1e-9)

    def tag_sentences(self, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> list[Decoded]:
        """Decoded sentences in input order (length-sorted batches inside)."""
        out: list[Decoded | None] = [None] * len(sentences)
        for indices in length_sorted([len(s) for s in sentences], batch_size):
            decoded = self.tag(self.vocab.encode([sentences[i] for i in indices]))
            for index, one in zip(indices, decoded, strict=True):
                out[index] = one
        return out  # type: ignore[return-value]

    def score_sentences(self, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> list[np.ndarray]:
        """Per sentence, its (n_tokens, K) scores, in input order (length-sorted batches inside)."""
        out: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(sentences)
        for indices in length_sorted([len(s) for s in sentences], batch_size):
            chosen = [sentences[i] for i in indices]
            scores = self.run(self.vocab.encode(chosen))
            for row, index in enumerate(indices):
                out[index] = scores[row, : len(sentences[index])]
        return out


def input_names(vocab: Vocab) -> tuple[str, ...]:
    """The graph inputs a model with these vocabularies takes: the name-list codes last, if it has lists."""
    return INPUT_NAMES + ((GAZETTEER_INPUT,) if vocab.gazetteer is not None else ())


def session_options(intra_threads: int = 0, spinning: bool = False) -> ort.SessionOptions:
    """Sequential execution with full graph optimisation; 0 intra threads = one per core.

    Without `spinning`, ONNX Runtime's threads sleep between operators instead
    of busy-waiting: on a small machine the spinning would take the cores the
    event loop needs to parse the next requests.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = intra_threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


def load_runtime(folder: str | Path, intra_threads: int = 0, spinning: bool = False) -> Runtime:
    """Load and verify an export folder (format version, sha256 of every file, graph signature)."""
    folder = Path(folder)
    metadata, vocab = load_export(folder)
    try:
        session = ort.InferenceSession(
            str(folder / MODEL_FILE), session_options(intra_threads, spinning), providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # ORT raises its own exception types for unreadable graphs
        raise ArtifactError(f"{folder / MODEL_FILE}: ONNX Runtime cannot load it ({err})") from None
    inputs = tuple(i.name for i in session.get_inputs())
    outputs = tuple(o.name for o in session.get_outputs())
    expected = input_names(vocab)
    if inputs != expected or outputs != OUTPUT_NAMES:
        raise ArtifactError(
            f"{folder / MODEL_FILE}: graph takes {inputs} -> {outputs}, expected {expected} -> {OUTPUT_NAMES}"
            + (" (its vocab.json has name lists)" if vocab.gazetteer is not None else "")
        )
    decoder = load_decoder(folder, metadata, vocab)
    runtime = Runtime(metadata.name, folder, metadata, vocab, session, decoder)
    self_check(runtime)
    return runtime


SELF_CHECK = [["The", "self", "check", "runs", "here", "."], ["A"]]


def self_check(runtime: Runtime) -> None:
    """Run a probe batch and refuse a graph whose scores or probabilities are not finite (NaN, infinite).

    Such a graph would load and serve: its tags would be arbitrary, and its scores, written as bare NaN, would make
    every answer that carries them invalid JSON. Refused here, it is refused at load with the file named.
    """
    batch = runtime.vocab.encode(SELF_CHECK)
    scores = runtime.run(batch)
    real = np.arange(scores.shape[1])[None, :] < batch.lengths[:, None]  # padded positions are meaningless
    decoded = runtime.decoder.decode_batch(scores, batch.lengths)
    finite = np.isfinite(scores[real]).all() and all(np.isfinite(d.marginals).all() for d in decoded)
    if not finite:
        raise ArtifactError(
            f"{runtime.folder / MODEL_FILE}: the graph's scores for a probe sentence are not finite (NaN or "
            "infinite); a model that serves must score every token with a number"
        )
