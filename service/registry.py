"""The served models: every export folder under the models directory, each with its batcher.

Loading verifies each export (format version, sha256 of every file); a missing
or damaged model stops start-up with a message naming the file, rather than
serving something that was never checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.batcher import Batcher, BatchLimits
from service.metrics import Metrics
from service.remote import RemoteBatcher
from service.runtime import Runtime, load_runtime
from service.settings import Settings
from service.worker import WorkerOptions
from tagger.artifact import METADATA_FILE, MODEL_FILE, ArtifactError


@dataclass(frozen=True)
class Served:
    runtime: Runtime
    batcher: Batcher[Any] | RemoteBatcher

    @property
    def version(self) -> str:
        """Content version: the first 12 hex digits of the model's sha256."""
        return self.runtime.metadata.files[MODEL_FILE][:12]


def discover(models: Path) -> list[Path]:
    """Export folders under `models` (sorted by name); none is an error."""
    if not models.is_dir():
        raise ArtifactError(f"{models}: models folder does not exist (set --models or TAGGER_MODELS)")
    folders = sorted(p for p in models.iterdir() if (p / METADATA_FILE).is_file())
    if not folders:
        raise ArtifactError(f"{models}: no export folders (subfolders with {METADATA_FILE}) to serve")
    return folders


def batch_limits(settings: Settings) -> BatchLimits:
    return BatchLimits(
        max_sentences=settings.max_batch_sentences if settings.batching else 1,
        max_tokens=settings.max_batch_tokens,
        max_padding=settings.max_batch_padding,
        max_wait=settings.max_wait_ms / 1000 if settings.batching else 0.0,
        queue_size=settings.queue_size,
        workers=settings.inference_workers,
    )


def load_models(settings: Settings, metrics: Metrics) -> dict[str, Served]:
    """Load every model and build its batcher (not started: that needs the event loop)."""
    served = {}
    for folder in discover(settings.models):
        runtime = load_runtime(folder, intra_threads=settings.intra_threads, spinning=settings.spinning)
        served[runtime.name] = Served(runtime, _batcher(runtime, settings, metrics))
        metrics.inference_restarts.labels(runtime.name)  # exported at 0, so increase() sees the first restart
        metadata = runtime.metadata
        metrics.model_info.labels(runtime.name).info(
            {"version": served[runtime.name].version, "sha256": metadata.files[MODEL_FILE], "task": metadata.task}
        )
    if settings.default_model not in served:
        raise ArtifactError(
            f"default model {settings.default_model!r} (TAGGER_DEFAULT_MODEL) is not among the served models "
            f"{sorted(served)} in {settings.models}"
        )
    return served


def _batcher(runtime: Runtime, settings: Settings, metrics: Metrics) -> Batcher[Any] | RemoteBatcher:
    limits = batch_limits(settings)
    if settings.inference_process:
        options = WorkerOptions(
            folder=str(runtime.folder),
            limits=limits,
            intra_threads=settings.intra_threads,
            spinning=settings.spinning,
            warmup=settings.warmup,
        )
        return RemoteBatcher(runtime.name, options, metrics, stall_timeout=settings.inference_stall_timeout_s)
    return Batcher(runtime.name, runtime.tag, limits, metrics, warm_up=runtime.warm_up if settings.warmup else None)


async def warm_up(model: Served) -> None:
    """Wait until the model is loaded and has run the warm-up grid (in its inference process, or here)."""
    await model.batcher.ready()
