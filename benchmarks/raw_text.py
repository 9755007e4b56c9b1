"""End to end from raw text, scored as the CoNLL 2018 shared task scores systems: Tokens, Sentences, UPOS F1.

    python benchmarks/raw_text.py [--split test] [--segmenter exports/segmenter-en-ewt | nupunkt]
                                  [--model exports/en-upos] [--max-tokens 512] [--keep SYSTEM.conllu] [--out FILE.json]

Each EWT document is rebuilt as raw text (`model.segmenter_data`: paragraphs
from `# newpar` separated by a blank line, sentences joined with their
SpaceAfter), then segmented (`tagger.segmentation`, torch-free), tokenized
(`tagger.tokenizer`) and tagged through the torch-free runtime
(`tagger.runtime`, the path the service takes; no server needed). The output
is CoNLL-U, scored against the gold file by the official
`../shared/tools/conll18_ud_eval.py` (called, never copied).

The CoNLL-U written here: 10 columns; `# newdoc`, `# newpar`, `# sent_id`,
`# text`; a multi-word token's range line (`3-4 don't`) wherever the
tokenizer cut a word into clitics (`tagger.tokenizer.multiword_ranges`), the
range carrying SpaceAfter; and, since this is a POS tagger with no parser, a
flat dummy tree (word 1 is the root, every other word attaches to it as
`dep`), which the scorer needs and which says nothing about syntax (UAS and
LAS are meaningless here and not printed).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.segmenter_data import documents, gold_document, read_gold  # noqa: E402
from tagger.runtime import load_runtime  # noqa: E402
from tagger.segmentation import load_segmenter  # noqa: E402
from tagger.tokenizer import Token, multiword_ranges, tokenize  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ud-english-ewt"
EVAL = ROOT.parent / "shared" / "tools" / "conll18_ud_eval.py"
METRICS = ("Tokens", "Sentences", "Words", "UPOS")
Segment = Callable[[str], list[tuple[int, int, int]]]  # text -> (start, end, paragraph) per sentence


@dataclass(frozen=True)
class SystemSentence:
    """A sentence as the system found it: its text, tokens (offsets into the text) and multi-word ranges."""

    doc: int
    paragraph: int
    text: str
    tokens: list[Token]
    ranges: list[tuple[int, int]]  # (first, last) token indexes, inclusive


def conllu_lines(sentence: SystemSentence, tags: Sequence[str], number: int) -> list[str]:
    """One sentence as CoNLL-U with a flat dummy tree (word 1 root, the others `dep` of it)."""
    lines = [f"# sent_id = {number}", "# text = " + re.sub(r"\s+", " ", sentence.text)]
    starts = {first: last for first, last in sentence.ranges}
    inside = {i for first, last in sentence.ranges for i in range(first, last + 1)}
    tokens = sentence.tokens

    def misc(last: int) -> str:
        glued = last + 1 < len(tokens) and tokens[last + 1].start == tokens[last].end
        return "SpaceAfter=No" if glued else "_"

    for i, token in enumerate(tokens):
        if i in starts:
            last = starts[i]
            form = sentence.text[token.start : tokens[last].end]
            lines.append(f"{i + 1}-{last + 1}\t{form}\t_\t_\t_\t_\t_\t_\t_\t{misc(last)}")
        head, relation = (0, "root") if i == 0 else (1, "dep")
        word_misc = "_" if i in inside else misc(i)
        lines.append(f"{i + 1}\t{token.text}\t_\t{tags[i]}\t_\t_\t{head}\t{relation}\t_\t{word_misc}")
    return lines


def learned(folder: Path, max_tokens: int) -> Segment:
    segmenter = load_segmenter(folder)
    return lambda text: [(s.start, s.end, s.paragraph) for s in segmenter.segment(text, max_tokens)]


def rule_based(name: str) -> Segment:
    """nupunkt or sentencex on each block between blank lines (no token limit)."""
    from benchmarks.segmentation import nupunkt_spans, sentencex_spans
    from tagger.segmentation import paragraphs

    spans_of = {"nupunkt": nupunkt_spans, "sentencex": sentencex_spans}[name]()

    def segment(text: str) -> list[tuple[int, int, int]]:
        blocks = list(paragraphs(text))
        return [(a, b, next(i for i, (s, e) in enumerate(blocks) if s <= a < e)) for a, b in spans_of(text)]

    return segment


def gold_sentences(split: str) -> Segment:
    """The gold sentence boundaries (an upper bound: what a perfect segmenter would give the tokenizer)."""
    by_text = {}
    for doc in documents(read_gold(DATA / f"en_ewt-ud-{split}.conllu")):
        text, spans = gold_document(doc)
        offsets, at = [], 0
        for number, par in enumerate(doc):
            count = len(par)
            offsets += [(a, b, number) for a, b in spans[at : at + count]]
            at += count
        by_text[text] = offsets
    return lambda text: by_text[text]


def run(split: str, segment: Segment, model: Path) -> tuple[str, dict[str, float]]:
    """The system's CoNLL-U for a split, and the segmenter's speed (characters per CPU-second)."""
    docs = documents(read_gold(DATA / f"en_ewt-ud-{split}.conllu"))
    sentences: list[SystemSentence] = []
    chars, cpu = 0, 0.0
    for number, doc in enumerate(docs):
        text, _ = gold_document(doc)
        started = time.process_time()
        found = segment(text)
        cpu += time.process_time() - started
        chars += len(text)
        for start, end, paragraph in found:
            tokens = tokenize(text[start:end])
            if tokens:
                sentences.append(SystemSentence(number, paragraph, text[start:end], tokens, multiword_ranges(tokens)))
    runtime = load_runtime(model, intra_threads=1)
    started = time.perf_counter()
    decoded = runtime.tag_sentences([[t.text for t in s.tokens] for s in sentences])
    tagging = time.perf_counter() - started
    lines: list[str] = []
    for i, (sentence, tags) in enumerate(zip(sentences, decoded, strict=True)):
        previous = sentences[i - 1] if i else None
        if previous is None or previous.doc != sentence.doc:
            lines.append(f"# newdoc id = doc{sentence.doc + 1}")
        if previous is None or (previous.doc, previous.paragraph) != (sentence.doc, sentence.paragraph):
            lines.append("# newpar")
        lines += [*conllu_lines(sentence, tags.tags, i + 1), ""]
    speed = {"segmenter_chars_per_cpu_second": round(chars / max(cpu, 1e-9)), "characters": chars}
    return "\n".join(lines) + "\n", speed | {"tagging_seconds": round(tagging, 2)}


def score(gold: Path, system: Path) -> dict[str, float]:
    """F1 of each metric, as the official scorer prints it with -v."""
    out = subprocess.run([sys.executable, str(EVAL), "-v", str(gold), str(system)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{EVAL.name} refused the output: {out.stderr.strip() or out.stdout.strip()}")
    table = {}
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 4 and cells[0] in METRICS:
            table[cells[0]] = float(cells[3])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument(
        "--segmenter", default=str(ROOT / "exports" / "segmenter-en-ewt"), help="folder, nupunkt, sentencex or gold"
    )
    parser.add_argument("--model", type=Path, default=ROOT / "exports" / "en-upos")
    parser.add_argument("--max-tokens", type=int, default=512, help="a sentence is cut before this many tokens")
    parser.add_argument("--keep", type=Path, help="also write the system CoNLL-U here")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.segmenter == "gold":
        segment = gold_sentences(args.split)
    elif args.segmenter in ("nupunkt", "sentencex"):
        segment = rule_based(args.segmenter)
    else:
        segment = learned(Path(args.segmenter), args.max_tokens)
    conllu, speed = run(args.split, segment, args.model)
    with tempfile.TemporaryDirectory() as tmp:
        system = args.keep or Path(tmp) / "system.conllu"
        system.write_text(conllu, encoding="utf-8")
        scores = score(DATA / f"en_ewt-ud-{args.split}.conllu", system)
    name = Path(args.segmenter).name
    print(f"EWT {args.split} from raw text: segmenter {name}, tagger {args.model.name}, scorer {EVAL.name}")
    for metric in METRICS:
        print(f"{metric:10} F1 {scores[metric]:6.2f}")
    print(f"segmenter  {speed['segmenter_chars_per_cpu_second']:,} characters per CPU-second")
    if args.out:
        result = {"split": args.split, "segmenter": name, "model": args.model.name, "f1": scores} | speed
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
