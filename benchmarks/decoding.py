"""What decoding costs next to the network: the words/s price of a CRF in the service.

    python benchmarks/decoding.py [--model en-ner] [--data FILE] [--repeats 5] [--baseline EXPORT_FOLDER]

Runs an export's ONNX graph on length-sorted batches of 32 (as the batcher
forms them) over a dev set, then decodes the same scores several ways with
the service's own decoder:

- `argmax`: per-token softmax argmax (what a plain tag set uses);
- `constrained`: Viterbi + forward-backward + span probabilities over the
  log-softmax, with the tag scheme's constraints and no learned transitions;
- `crf`: the same with the model's learned CRF transitions (what en-ner serves).

Prints words/s of the network alone, of each decoder alone, and of network +
decoder, as medians over --repeats passes; writes decoding-MODEL.json/.md.
`--baseline` measures another export of the same task in the same run (its
network and its own decoder), to price one model against another: an
ensemble against a single member, say.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from tagger.decoding import Decoder
from tagger.encoding import Batch, length_sorted
from tagger.readers import read_corpus
from tagger.runtime import Runtime, load_runtime

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT.parent / "shared" / "data"
DEV = {"en-upos": DATA / "ud-english-ewt" / "en_ewt-ud-dev.conllu", "en-ner": DATA / "wikiann-en" / "dev.conll"}


def median_seconds(repeats: int, job: Any) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        job()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def network_seconds(runtime: Runtime, batches: list[Batch], repeats: int) -> tuple[float, list[np.ndarray]]:
    """Median seconds for the graph over every batch, and its scores."""
    return median_seconds(repeats, lambda: [runtime.run(b) for b in batches]), [runtime.run(b) for b in batches]


def decode_seconds(decoder: Decoder, scores: list[np.ndarray], batches: list[Batch], repeats: int) -> float:
    """Median seconds for `decoder` over the scores of every batch."""
    return median_seconds(
        repeats, lambda: [decoder.decode_batch(s, b.lengths) for s, b in zip(scores, batches, strict=True)]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "exports")
    parser.add_argument("--model", default="en-ner")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--baseline", type=Path, help="another export folder to measure in the same run")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="*", default=[], help="also the network alone on batches of these sizes"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    runtime = load_runtime(args.models / args.model, intra_threads=args.threads)
    data = args.data or DEV[args.model]
    sentences = [s.tokens for s in read_corpus(data)]
    words = sum(len(s) for s in sentences)
    order = length_sorted([len(s) for s in sentences], 32)
    batches = [runtime.vocab.encode([sentences[i] for i in ix]) for ix in order]
    network, scores = network_seconds(runtime, batches, args.repeats)

    tags, scheme = runtime.vocab.tags, runtime.decoder.scheme
    decoders = {"argmax": Decoder(tags)}
    if scheme is not None:
        decoders["constrained"] = Decoder(tags, scheme)
    if runtime.decoder.crf is not None:
        decoders["crf"] = runtime.decoder

    rows: list[dict[str, Any]] = [{"stage": "network (ONNX Runtime)", "seconds": network}]
    for size in args.batch_sizes:  # does the network's cost per word fall with the batch?
        sized = [
            runtime.vocab.encode([sentences[i] for i in ix]) for ix in length_sorted([len(s) for s in sentences], size)
        ]
        rows.append(
            {"stage": f"network, batches of {size}", "seconds": network_seconds(runtime, sized, args.repeats)[0]}
        )
    for name, decoder in decoders.items():
        alone = decode_seconds(decoder, scores, batches, args.repeats)
        rows.append({"stage": f"decode: {name}", "seconds": alone})
        rows.append({"stage": f"network + {name}", "seconds": network + alone})
    if args.baseline:
        base = load_runtime(args.baseline, intra_threads=args.threads)
        base_batches = [base.vocab.encode([sentences[i] for i in ix]) for ix in order]
        base_network, base_scores = network_seconds(base, base_batches, args.repeats)
        base_decode = decode_seconds(base.decoder, base_scores, base_batches, args.repeats)
        rows.append({"stage": f"baseline {args.baseline}: network", "seconds": base_network})
        rows.append(
            {"stage": f"baseline {args.baseline}: network + its decoder", "seconds": base_network + base_decode}
        )
    for row in rows:
        row["words_per_s"] = words / row["seconds"]

    lines = [f"{args.model} on {data.name}: {len(sentences)} sentences, {words} words, batches of 32", ""]
    lines += ["| stage | words/s | us a word |", "|---|---|---|"]
    lines += [f"| {r['stage']} | {r['words_per_s']:,.0f} | {1e6 / r['words_per_s']:.1f} |" for r in rows]
    markdown = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model, "data": str(data), "words": words, "repeats": args.repeats, "rows": rows}
    (args.out / f"decoding-{args.model}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"decoding-{args.model}.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
