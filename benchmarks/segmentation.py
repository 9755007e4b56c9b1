"""Sentence segmenters side by side on EWT raw text: Sentences F1 and characters per CPU-second.

    python benchmarks/segmentation.py [--split dev] [--segmenter exports/segmenter-en-ewt] [--out FILE.json]

Each document of the split is rebuilt as raw text (`model.segmenter_data`:
paragraphs from `# newpar`, separated by a blank line) and segmented whole.
Every segmenter gets the blank lines as hard boundaries (the rule-based ones
are run on each block between them), so the figures are "with gold paragraph
breaks", as the issue's anchors for rule-based segmenters are. A sentence
counts when both its (stripped) offsets match the gold ones. Characters per
CPU-second is process time around the segmenting calls alone (one thread).

The rule-based segmenters are MIT-licensed PyPI packages (the dev extra):
nupunkt (Punkt, retrained on legal and general English) and sentencex
(Wikipedia-derived rules, many languages).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.segmenter_data import GoldSentence, documents, gold_document, gold_tokens, read_gold, sentence_f1, span_f1  # noqa: E402
from tagger.segmentation import Segmenter, load_segmenter, paragraphs  # noqa: E402
from tagger.tokenizer import multiword_ranges, tokenize  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ud-english-ewt"
Spans = Callable[[str], Sequence[tuple[int, int]]]


def _stripped(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    piece = text[start:end]
    if piece.strip():
        a = start + len(piece) - len(piece.lstrip())
        yield a, a + len(piece.strip())


def per_paragraph(spans_of: Spans) -> Spans:
    """Run a segmenter on each block between blank lines, with offsets back in the whole text."""

    def segment(text: str) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for start, end in paragraphs(text):
            for a, b in spans_of(text[start:end]):
                out += _stripped(text, start + a, start + b)
        return out

    return segment


def nupunkt_spans() -> Spans:
    import nupunkt

    return per_paragraph(nupunkt.sent_spans)


def sentencex_spans() -> Spans:
    import sentencex

    def spans(text: str) -> list[tuple[int, int]]:
        out, at = [], 0
        for piece in sentencex.segment("en", text):
            start = text.index(piece, at)
            out.append((start, start + len(piece)))
            at = start + len(piece)
        return out

    return per_paragraph(spans)


def learned_spans(segmenter: Segmenter) -> Spans:
    return lambda text: [(s.start, s.end) for s in segmenter.segment(text)]


def tokenizer_tokens(text: str) -> list[tuple[int, int]]:
    """The tokenizer's tokens with its clitic cuts joined back (`do n't` -> `don't`): surface tokens, as EWT's."""
    tokens = tokenize(text)
    spans = [(t.start, t.end) for t in tokens]
    for first, last in reversed(multiword_ranges(tokens)):
        spans[first : last + 1] = [(tokens[first].start, tokens[last].end)]
    return spans


def token_f1(docs: list[list[list[GoldSentence]]], tokens_of: Spans) -> float:
    """Surface-token F1 over whole documents (what conll18_ud_eval.py calls Tokens)."""
    gold: list[tuple[int, int, int]] = []
    found: list[tuple[int, int, int]] = []
    for number, doc in enumerate(docs):
        text, _ = gold_document(doc)
        gold += [(number, a, b) for a, b in gold_tokens(doc)]
        found += [(number, a, b) for a, b in tokens_of(text)]
    return span_f1(gold, found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="dev", choices=["train", "dev", "test"])
    parser.add_argument("--segmenter", type=Path, default=ROOT / "exports" / "segmenter-en-ewt")
    parser.add_argument("--window", type=int, help="the learned segmenter's window, instead of its folder's")
    parser.add_argument("--context", type=int, help="the learned segmenter's context, instead of its folder's")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    docs = documents(read_gold(DATA / f"en_ewt-ud-{args.split}.conllu"))
    candidates: dict[str, Spans] = {"nupunkt 0.8": nupunkt_spans(), "sentencex 1.0": sentencex_spans()}
    tokens = {"tokenizer (tagger.tokenizer)": token_f1(docs, tokenizer_tokens)}
    if args.segmenter.is_dir():
        segmenter = load_segmenter(args.segmenter, window=args.window, context=args.context)
        candidates = {f"learned ({args.segmenter.name})": learned_spans(segmenter), **candidates}
        tokens[f"learned ({args.segmenter.name})"] = token_f1(docs, segmenter.tokens)
    results = {name: sentence_f1(docs, spans) for name, spans in candidates.items()}
    print(f"EWT {args.split} from raw text, gold paragraph breaks ({len(docs)} documents)")
    print(f"{'segmenter':32} {'P':>6} {'R':>6} {'F1':>6} {'chars/CPU-s':>12}")
    for name, r in results.items():
        print(f"{name:32} {r['precision']:6.2f} {r['recall']:6.2f} {r['f1']:6.2f} {r['chars_per_cpu_second']:12,}")
    print("surface tokens (don't whole), F1:")
    for name, f1 in tokens.items():
        print(f"{name:32} {f1:6.2f}")
    if args.out:
        report = {"split": args.split, "sentences": results, "token_f1": tokens}
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
