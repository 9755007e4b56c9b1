"""The served models: every export folder under the models directory, each with its batcher.

Loading verifies each export (format version, sha256 of every file); a missing
or damaged model stops start-up with a message naming the file, rather than
serving something that was never checked.

With inference processes (the default) this process holds what the request
path needs of a model, its metadata, vocabularies and output tags, and never
opens an ONNX Runtime session: each inference process loads its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service.inference.batcher import ModelBatcher
from service.inference.in_process import InProcessBatcher
from service.inference.process_batcher import ProcessBatcher
from service.inference.scheduling import BatchLimits
from service.observability.drift import ModelDrift
from service.observability.metrics import Metrics
from service.settings import Settings
from tagger.artifact import (
    METADATA_FILE,
    MODEL_FILE,
    ArtifactError,
    Metadata,
    load_decoder,
    load_export,
    load_profile,
)
from tagger.decoding import Tagged
from tagger.encoding import Batch, Vocab
from tagger.profile import Profiler
from tagger.runtime import Runtime, load_runtime

CARD_FILE = "README.md"
log = logging.getLogger("tagger")


@dataclass(frozen=True)
class Served:
    """One served model: what requests are checked and encoded with, and the batcher that runs them."""

    name: str
    folder: Path
    metadata: Metadata
    vocab: Vocab
    output_tags: tuple[str, ...]  # the tags responses carry (IOB2 for span models): top_k's columns
    batcher: ModelBatcher
    card: str | None = None  # the export's README.md (its model card), shown by GET /v1/models/{model}
    drift: ModelDrift | None = None  # live drift counts against the export's reference (None: TAGGER_DRIFT=false)

    @property
    def version(self) -> str:
        """Content version: the first 12 hex digits of the model's sha256."""
        return self.metadata.files[MODEL_FILE][:12]

    @property
    def spans(self) -> bool:
        """Whether the model's tags are span tags (answers list entity spans)."""
        return self.metadata.scheme is not None


def discover(models: Path) -> list[Path]:
    """Export folders under `models` (sorted by name); none is an error."""
    if not models.is_dir():
        raise ArtifactError(f"{models}: models folder does not exist (set --models or TAGGER_MODELS)")
    folders = sorted(p for p in models.iterdir() if (p / METADATA_FILE).is_file())
    if not folders:
        raise ArtifactError(f"{models}: no export folders (subfolders with {METADATA_FILE}) to serve")
    return folders


def load_served(settings: Settings, metrics: Metrics) -> dict[str, Served]:
    """Load and verify every export folder and build its batcher (not started: that needs the event loop)."""
    served: dict[str, Served] = {}
    for folder in discover(settings.models):
        started = time.perf_counter()
        model = build_served(folder, settings, metrics)
        log.info(
            "loaded model %s version %s task %s from %s in %.2f s",
            model.name,
            model.version,
            model.metadata.task,
            folder,
            time.perf_counter() - started,
        )
        if model.name in served:
            raise ArtifactError(
                f"{folder}: model name {model.name!r} (its {METADATA_FILE}) is also the name of "
                f"{served[model.name].folder}; each served model needs a name of its own"
            )
        served[model.name] = model
        metrics.inference_restarts.labels(model.name)  # exported at 0, so increase() sees the first restart
        metrics.model_changes.labels(model.name, "loaded").inc()
        metrics.model_changes.labels(model.name, "failed")  # at 0, for the same reason
        metrics.model_info.labels(model.name).info(describe_loaded(model))
    if settings.default_model not in served:
        raise ArtifactError(
            f"default model {settings.default_model!r} (TAGGER_DEFAULT_MODEL) is not among the served models "
            f"{sorted(served)} in {settings.models}"
        )
    return served


def describe_loaded(model: Served) -> dict[str, str]:
    """The labels of `tagger_model_info` for a model."""
    return {"version": model.version, "sha256": model.metadata.files[MODEL_FILE], "task": model.metadata.task}


def build_served(folder: Path, settings: Settings, metrics: Metrics, trial: bool = False, nice: int = 0) -> Served:
    """Verify one export folder and build its batcher (not started).

    `trial`: a new version beside one serving; if its inference process cannot start, it is not restarted
    (a model served since start-up is retried with backoff). `nice`: its inference process's niceness (shadows).
    """
    if settings.inference_process:
        metadata, vocab = load_export(folder)  # verifies every file's sha256, the graph's included
        decoder = load_decoder(folder, metadata, vocab)
        drift = _drift(folder, metadata, vocab, decoder.output_tags, settings)
        on_drift = drift.add if drift is not None else None
        batcher: ModelBatcher = ProcessBatcher(
            metadata.name, str(folder), settings, metrics, metadata.files, trial, on_drift=on_drift, nice=nice
        )
        return Served(metadata.name, folder, metadata, vocab, decoder.output_tags, batcher, _card(folder), drift)
    runtime = load_runtime(folder, intra_threads=settings.intra_threads, spinning=settings.spinning)
    tags = runtime.decoder.output_tags
    drift = _drift(folder, runtime.metadata, runtime.vocab, tags, settings)
    warm_up = runtime.warm_up if settings.warmup else None
    run = _tagging(runtime, drift)
    batcher = InProcessBatcher(runtime.name, run, BatchLimits.of(settings), metrics, warm_up=warm_up)
    return Served(runtime.name, folder, runtime.metadata, runtime.vocab, tags, batcher, _card(folder), drift)


def _drift(
    folder: Path, metadata: Metadata, vocab: Vocab, output_tags: tuple[str, ...], settings: Settings
) -> ModelDrift | None:
    """The model's live drift counts, against its export's reference profile (verified; None if it has none)."""
    if not settings.drift:
        return None
    reference = load_profile(folder, metadata)
    version = metadata.files[MODEL_FILE][:12]
    return ModelDrift.of(metadata.name, version, vocab, output_tags, metadata.scheme is not None, reference)


def _card(folder: Path) -> str | None:
    """The model card, if the export folder has one (documentation: not part of its checksummed files)."""
    path = folder / CARD_FILE
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _tagging(runtime: Runtime, drift: ModelDrift | None) -> Callable[[Batch], list[Tagged]]:
    """The in-process batcher's model: a padded batch -> each sentence's `Tagged`, probabilities included (and
    the drift statistics of its outputs counted, as an inference process counts them)."""
    profiler = Profiler(runtime.vocab, runtime.decoder) if drift is not None else None

    def tag(batch: Batch) -> list[Tagged]:
        decoded = runtime.tag(batch)
        if profiler is not None and drift is not None:
            delta = profiler.counts()
            profiler.count_output(delta, decoded)
            drift.add(delta)
        return [one.tagged() for one in decoded]

    return tag


async def warm_up(model: Served) -> None:
    """Wait until the model is loaded and has run the warm-up grid (in its inference process, or here)."""
    await model.batcher.ready()
