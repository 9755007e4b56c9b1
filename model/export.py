"""Checkpoint -> export folder (ONNX graph + vocabularies + metadata), verified before it lands.

The export is written to a temporary folder next to the target and moved into
place only after ONNX Runtime has reproduced PyTorch on every sentence of the
dev set, run in shuffled mixed-length batches (the worst case for padding):
identical tags, scores within `tolerance`. Otherwise it fails loudly and the
target is left untouched. The dev set's reference profile for drift
(profile.json, `model.profile`) is computed by the exported graph itself.
"""

from __future__ import annotations

import platform
import random
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch

from model.batches import to_tensors
from model.checkpoint import decoder_of, tag_scheme
from model.config import Config
from model.data import read_split
from model.ensemble import Ensemble, load_models
from model.network import Tagger
from model.predict import predict_scores
from model.profile import dev_profile
from model.storage import Storage, round_weights, store_weights
from tagger.artifact import (
    CRF_FILE,
    METADATA_FILE,
    MODEL_FILE,
    OUTPUT_NAMES,
    VOCAB_FILE,
    Metadata,
    sha256_file,
    write_json,
    write_profile,
)
from tagger.decoding import Decoder
from tagger.encoding import Vocab
from tagger.evaluation import evaluate
from tagger.gazetteer import INPUT_NAME as GAZETTEER_INPUT
from tagger.readers import Sentence
from tagger.runtime import input_names, load_runtime

OPSET = 17


class ExportError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model."""


@dataclass(frozen=True)
class Parity:
    sentences: int
    tokens: int
    tag_mismatches: int  # sentences whose tags differ
    max_abs_diff: float  # over real (unpadded) positions


def export_onnx(model: Tagger | Ensemble, vocab: Vocab, path: Path) -> None:
    """Trace the model into ONNX with dynamic batch, length and character axes."""
    sample = to_tensors(vocab, [Sentence(("A", "tiny", "sample", "."))], [0])
    dims = {"words": {0: "batch", 1: "tokens"}, "cases": {0: "batch", 1: "tokens"}}
    dims |= {"chars": {0: "batch", 1: "tokens", 2: "chars"}, "lengths": {0: "batch"}}
    dims |= {"scores": {0: "batch", 1: "tokens"}}
    if vocab.gazetteer is not None:  # name lists: one more input, last (`tagger.gazetteer`)
        dims |= {GAZETTEER_INPUT: {0: "batch", 1: "tokens"}}
    model.eval()
    with warnings.catch_warnings():
        # Shape checks traced as constants, and an LSTM batch-size warning that
        # does not apply: h0/c0 default to zeros and sequence_lens is wired
        # (the self-check runs mixed batch sizes).
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        # The TorchScript exporter (dynamo=False) turns the packed LSTM into ONNX
        # LSTM nodes with sequence_lens wired; the dynamo exporter fails on
        # pack_padded_sequence with torch 2.13. So its deprecation notices (one
        # from the exporter, one from its logging helper) are known and silenced
        # here, where the choice is made, and nowhere else.
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            model,
            sample.inputs,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(input_names(vocab)),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dims,
        )


def check_parity(
    model: Tagger | Ensemble, decoder: Decoder, folder: Path, sentences: list[Sentence], batch_size: int = 32
) -> Parity:
    """Compare PyTorch and ONNX Runtime on shuffled, mixed-length batches of `sentences`.

    Tags are compared after decoding: PyTorch scores through `decoder` (built
    from the checkpoint), ONNX Runtime through the decoder the export folder
    loads (its crf.json included), exactly as the service will decode them.
    """
    runtime = load_runtime(folder)
    scores = predict_scores(model, runtime.vocab, sentences)
    reference = [decoder.decode(s).ids for s in scores]
    order = list(range(len(sentences)))
    random.Random(0).shuffle(order)
    mismatches, worst = 0, 0.0
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = runtime.vocab.encode([sentences[i].tokens for i in indices])
        ours = runtime.run(batch)
        decoded = runtime.decoder.decode_batch(ours, batch.lengths)
        for row, index in enumerate(indices):
            n = len(sentences[index].tokens)
            worst = max(worst, float(np.abs(ours[row, :n] - scores[index]).max()))
            mismatches += int(not np.array_equal(decoded[row].ids, reference[index]))
    tokens = sum(len(s.tokens) for s in sentences)
    return Parity(sentences=len(sentences), tokens=tokens, tag_mismatches=mismatches, max_abs_diff=worst)


def _scores(folder: Path, config: Config, splits: dict[str, str]) -> dict[str, dict[str, Any]]:
    runtime = load_runtime(folder)
    reports = {}
    for name, path in splits.items():
        sentences = read_split(config.data, path)
        predicted = [d.tags for d in runtime.tag_sentences([s.tokens for s in sentences])]
        reports[name] = evaluate([list(s.tags) for s in sentences], predicted).to_dict()
    return reports


def _train_files(config: Config) -> dict[str, str]:
    """The training files by split name: `train`, or `train[0]`, `train[1]`, ... for several."""
    corpora = config.data.train_corpora()
    if len(corpora) == 1:
        return {"train": corpora[0].path}
    return {f"train[{i}]": c.path for i, c in enumerate(corpora)}


def _provenance(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "checkpoint_epoch": state.get("epoch"),
        "checkpoint_dev_metric": state.get("dev_metric"),
        # the mean weights of the last train.average_last epochs, ending at checkpoint_epoch
        "checkpoint_averaged": bool(state.get("averaged", False)),
    }


def _provenance_of(
    checkpoints: Sequence[str | Path], configs: list[Config], states: list[dict[str, Any]]
) -> dict[str, Any]:
    """The metadata `extra` on where the weights came from: the checkpoint's epoch, or each member's."""
    if len(checkpoints) == 1:
        return _provenance(states[0])
    members = [
        {"checkpoint": str(p), "config": c.to_dict(), **_provenance(s)}
        for p, c, s in zip(checkpoints, configs, states, strict=True)
    ]
    return {"ensemble": members}


def _metadata(
    folder: Path,
    name: str,
    config: Config,
    vocab: Vocab,
    crf: bool,
    splits: dict[str, str],
    files: list[str],
    extra: dict[str, Any],
) -> Metadata:
    """What the export says about itself before it is scored: tags, schemes, config, data and file checksums."""
    scheme = tag_scheme(config, vocab)
    return Metadata(
        name=name,
        task=config.data.task,
        scheme="IOB2" if scheme is not None else None,
        tag_scheme=scheme,
        decoder="crf" if crf else "softmax",
        tags=list(vocab.tags),
        config=config.to_dict(),
        data={k: {"path": v, "sha256": sha256_file(Path(v))} for k, v in splits.items()},
        scores={},
        files={f: sha256_file(folder / f) for f in files},
        exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions={
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "opset": str(OPSET),
        },
        extra=extra,
    )


def export(
    checkpoints: str | Path | Sequence[str | Path],
    out: str | Path,
    name: str | None = None,
    tolerance: float = 1e-4,
    weights: Storage = "float32",
) -> Parity:
    """Export one checkpoint, or an ensemble of several, to the folder `out`, self-checked on the dev set.

    `weights` chooses how large float weights are stored: float32, float16 or int8 (`model.storage`).
    Returns the parity figures.
    """
    out = Path(out)
    paths = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    loaded = load_models(paths)
    model, config, vocab = loaded.model, loaded.config, loaded.vocab
    provenance = _provenance_of(paths, loaded.configs, loaded.states)
    round_weights(model, weights)
    if not config.data.dev:
        raise ExportError("the checkpoint's config names no dev set (data.dev) to verify the export against")
    dev = read_split(config.data, config.data.dev)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        export_onnx(model, vocab, tmp / MODEL_FILE)
        store_weights(tmp / MODEL_FILE, weights)
        write_json(tmp / VOCAB_FILE, vocab.to_dict(), compact=True)
        decoder = decoder_of(model.crf, config, vocab)
        files = [MODEL_FILE, VOCAB_FILE]
        if model.crf is not None:
            write_json(tmp / CRF_FILE, model.crf.to_numpy().to_dict())
            files.append(CRF_FILE)
        evaluation = {k: v for k, v in (("dev", config.data.dev), ("test", config.data.test)) if v}
        splits = {**_train_files(config), **evaluation}
        extra = {**provenance, "weights": weights}
        metadata = _metadata(tmp, name or out.name, config, vocab, model.crf is not None, splits, files, extra)
        write_json(tmp / METADATA_FILE, metadata.to_dict())
        parity = check_parity(model, decoder, tmp, dev)
        if parity.tag_mismatches or parity.max_abs_diff > tolerance:
            raise ExportError(
                f"ONNX Runtime disagrees with PyTorch on {config.data.dev}: {parity.tag_mismatches} of "
                f"{parity.sentences} sentences have different tags, max score difference "
                f"{parity.max_abs_diff:.2e} (tolerance {tolerance:.0e})"
            )
        evaluated = {k: v for k, v in splits.items() if not k.startswith("train")}
        scored = Metadata(**{**metadata.to_dict(), "scores": _scores(tmp, config, evaluated)})
        scored.extra["parity"] = parity.__dict__
        write_json(tmp / METADATA_FILE, scored.to_dict())
        write_profile(tmp, dev_profile(load_runtime(tmp), config.data.dev, [s.tokens for s in dev]))
        # mkdtemp made it 0700; a model folder is read by whoever serves it (a container's user).
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return parity
