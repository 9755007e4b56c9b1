"""spaCy's tagger in-process on the load benchmark's sentences: the rival to beat over HTTP.

    pip install spacy              # not a dependency of tagger; a separate venv is fine
    PYTHONPATH=. python benchmarks/spacy_baseline.py [--data DEV_FILE] [--repeat 3] [--batch-size 256]

(PYTHONPATH: the project's own reader reads the sentences, and a spaCy venv
need not have tagger installed; `load.py --spacy-python` sets it.)

A spaCy English pipeline tags with a tok2vec (hash embeddings of NORM,
PREFIX, SUFFIX and SHAPE, then a CNN of width 96 and depth 4) feeding a
softmax tagger; `spacy.blank("en")` plus the default `tagger` component is
that architecture. A network's speed does not depend on its trained weights,
so it is initialised, not trained, on the UPOS tag set: this measures speed
only, never accuracy. The sentences go in pre-tokenized (`Doc(words=...)`),
in large batches (`pipe`, spaCy's best case), with no HTTP: everything
favours spaCy but the core count, since it runs on one core while the service
uses both (its inference process and its server process). Prints words/s
(median of --repeat passes over the dev set) and writes spacy-baseline.json
and .md to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from tagger.readers import read_corpus

ROOT = Path(__file__).resolve().parents[1]

DEV = ROOT.parent / "shared" / "data" / "ud-english-ewt" / "en_ewt-ud-dev.conllu"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    try:
        import spacy
        from spacy.tokens import Doc
    except ImportError:
        raise SystemExit("spaCy is not installed: pip install spacy (it is not a dependency of tagger)") from None

    corpus = read_corpus(args.data)
    nlp = spacy.blank("en")
    tagger = nlp.add_pipe("tagger")
    for tag in sorted({t for s in corpus for t in s.tags}):
        tagger.add_label(tag)
    nlp.initialize()
    words = sum(len(s.tokens) for s in corpus)

    def one_pass() -> tuple[float, float]:
        """(words per second, words per CPU-second of this process, all its threads)."""
        docs = [Doc(nlp.vocab, words=list(s.tokens)) for s in corpus]
        started, cpu = time.perf_counter(), time.process_time()
        for _ in nlp.pipe(docs, batch_size=args.batch_size):
            pass
        return words / (time.perf_counter() - started), words / (time.process_time() - cpu)

    one_pass()  # warm up
    passes = sorted(one_pass() for _ in range(args.repeat))
    runs = [wall for wall, _ in passes]
    result = {
        "spacy": spacy.__version__,
        "data": str(args.data),
        "sentences": len(corpus),
        "words": words,
        "batch_size": args.batch_size,
        "words_per_s": statistics.median(runs),
        "runs_words_per_s": [round(r) for r in runs],
        "words_per_cpu_s": statistics.median(cpu for _, cpu in passes),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spacy-baseline.json").write_text(json.dumps(result, indent=1) + "\n")
    line = (
        f"spaCy {spacy.__version__} tok2vec + tagger, in-process, pre-tokenized, batches of {args.batch_size}: "
        f"{result['words_per_s']:.0f} words/s (median of {args.repeat}; runs {result['runs_words_per_s']}), "
        f"{result['words_per_cpu_s']:.0f} words per CPU-second"
    )
    (args.out / "spacy-baseline.md").write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
