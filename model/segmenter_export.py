"""Segmenter checkpoint -> segmenter folder (`tagger.segmentation`'s contract), verified before it lands.

As for taggers (`model.export`): written to a temporary folder beside the
target, moved into place only once ONNX Runtime reproduces PyTorch on every
dev sequence in shuffled mixed-length batches (scores within `tolerance`,
identical labels), then scored on dev and test from raw text through the
torch-free `tagger.segmentation`, exactly as it will serve.
"""

from __future__ import annotations

import platform
import random
import shutil
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch

from model.segmenter import Encoded, encode, load, predict, to_tensors
from model.segmenter_data import chunks, documents, read_gold, sentence_f1
from model.segmenter_network import SegmenterNet
from tagger.artifact import sha256_file, write_json
from tagger.segmentation import (
    CHARS_FILE,
    INPUT_NAMES,
    LABELS,
    MODEL_FILE,
    OUTPUT_NAMES,
    SEGMENTER_FILE,
    Manifest,
    load_segmenter,
)

OPSET = 17


class ExportError(RuntimeError):
    """The exported graph does not reproduce the PyTorch segmenter."""


def _onnx(net: SegmenterNet, path: Path) -> None:
    sample = (torch.ones(2, 5, dtype=torch.int64), torch.ones(2, 5, dtype=torch.int64), torch.tensor([5, 3]))
    axes = {"chars": {0: "batch", 1: "length"}, "classes": {0: "batch", 1: "length"}, "lengths": {0: "batch"}}
    with warnings.catch_warnings():  # the exporter's notices about itself (see model.export)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        torch.onnx.export(
            net,
            sample,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=axes | {"scores": {0: "batch", 1: "length"}},
        )


def _parity(net: SegmenterNet, folder: Path, items: list[Encoded], batch_size: int = 16) -> dict[str, float]:
    """ONNX Runtime against PyTorch on shuffled mixed-length batches: worst score difference, label mismatches."""
    session = load_segmenter(folder).session
    reference = predict(net, items)
    order = list(range(len(items)))
    random.Random(0).shuffle(order)
    worst, mismatches = 0.0, 0
    for first in range(0, len(order), batch_size):
        indices = order[first : first + batch_size]
        chars, classes, _, lengths = to_tensors([items[i] for i in indices])
        feed = {"chars": chars.numpy(), "classes": classes.numpy(), "lengths": lengths.numpy()}
        (scores,) = session.run(list(OUTPUT_NAMES), feed)
        for row, i in enumerate(indices):
            ours = scores[row, : len(items[i].chars)]
            worst = max(worst, float(np.abs(ours - reference[i]).max()))
            mismatches += int(not np.array_equal(ours.argmax(1), reference[i].argmax(1)))
    return {"sequences": len(items), "max_abs_diff": worst, "label_mismatches": mismatches}


def score(folder: Path, path: str) -> dict[str, Any]:
    """Sentence F1 from the raw text of a treebank's documents, through the torch-free segmenter."""
    segmenter = load_segmenter(folder)
    return sentence_f1(documents(read_gold(path)), lambda text: [(s.start, s.end) for s in segmenter.segment(text)])


def export_segmenter(run: str | Path, out: str | Path, tolerance: float = 1e-4) -> dict[str, Any]:
    """Export a run's best.pt to the folder `out`; returns the manifest's scores and parity."""
    net, config, chars, state = load(run)
    out = Path(out)
    dev = encode(list(chunks(read_gold(config.data.dev), config.train.chunk_chars)), chars)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _onnx(net, tmp / MODEL_FILE)
        write_json(tmp / CHARS_FILE, chars, compact=True)
        splits = {k: v for k, v in (("train", config.data.train), ("dev", config.data.dev), ("test", config.data.test))}
        manifest = Manifest(
            name=out.name,
            labels=list(LABELS),
            window=config.serve.window,
            context=config.serve.context,
            files={f: sha256_file(tmp / f) for f in (MODEL_FILE, CHARS_FILE)},
            config=config.to_dict(),
            data={k: {"path": v, "sha256": sha256_file(Path(v))} for k, v in splits.items() if v},
            scores={},
            exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
            versions={"python": platform.python_version(), "torch": torch.__version__, "opset": str(OPSET)}
            | {"onnxruntime": onnxruntime.__version__},
            extra={"checkpoint_epoch": state.get("epoch"), "checkpoint_dev_metric": state.get("dev_metric")},
        )
        write_json(tmp / SEGMENTER_FILE, manifest.__dict__)
        parity = _parity(net, tmp, dev)
        if parity["label_mismatches"] or parity["max_abs_diff"] > tolerance:
            raise ExportError(f"ONNX Runtime disagrees with PyTorch on {config.data.dev}: {parity}")
        scores = {k: score(tmp, v) for k, v in splits.items() if v and k != "train"}
        manifest.extra["parity"] = parity
        write_json(tmp / SEGMENTER_FILE, manifest.__dict__ | {"scores": scores})
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"scores": scores, "parity": parity}
