"""Spurious entities in plain prose: what an NER model finds, through the service, in text that has few names.

    python benchmarks/prose_spans.py [--text /usr/share/common-licenses/GPL-3] [--models exports] [--model en-ner ...]

The text (by default the GPL-3 licence that Debian ships among its common
licences) is split into paragraphs, then sentences, and POSTed as
`{"texts": [...]}` to a `tagger serve` this script starts on 127.0.0.1. A
licence names almost nothing (the Free Software Foundation, GNU, a few
places), so nearly every span found is a false positive: the figure to watch
is spans per 1,000 tokens, and the examples show what kind they are.
Writes prose-spans.json and prose-spans.md to --out.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from load import free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
GPL3 = Path("/usr/share/common-licenses/GPL-3")
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[\"'(A-Z0-9])")
BATCH = 64  # texts per request, well within the service's limits


def sentences(text: str) -> list[str]:
    """Paragraphs (blank-line separated) split into sentences; whitespace inside a paragraph folded."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        out += [s for s in SENTENCE_END.split(flat) if s.strip()]
    return out


def tag(port: int, model: str, texts: list[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for start in range(0, len(texts), BATCH):
        body = json.dumps({"texts": texts[start : start + BATCH]}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/models/{model}/tag", body, {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            results += json.loads(response.read())["results"]
    return results


def summary(texts: list[str], results: list[dict[str, Any]], examples: int) -> dict[str, Any]:
    tokens = sum(len(r["tokens"]) for r in results)
    spans = [(text, span) for text, r in zip(texts, results, strict=True) for span in r.get("spans", [])]
    by_label = collections.Counter(span["label"] for _, span in spans)
    by_text = collections.Counter(f"{span['text']} ({span['label']})" for _, span in spans)
    first_word = sum(1 for _, span in spans if span["start"] == 0)
    shown = []
    for text, span in spans[:: max(1, len(spans) // examples)][:examples]:
        a, b = span["start_char"], span["end_char"]
        shown.append(f"{text[:a]}[{text[a:b]}]{span['label']}{text[b:]}")
    return {
        "texts": len(texts),
        "tokens": tokens,
        "spans": len(spans),
        "spans_per_1000_tokens": 1000 * len(spans) / tokens,
        "by_label": dict(by_label.most_common()),
        "sentence_initial": first_word,
        "most_common": by_text.most_common(15),
        "examples": shown,
    }


def markdown(text_path: Path, results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"Text: `{text_path}`, {next(iter(results.values()))['texts']} sentences, through `POST /v1/models/NAME/tag`.",
        "",
        "| model | tokens | spans | spans per 1,000 tokens | by label | span is the sentence's first token |",
        "|---|---|---|---|---|---|",
    ]
    for model, r in results.items():
        labels = ", ".join(f"{k} {v}" for k, v in r["by_label"].items())
        lines.append(
            f"| {model} | {r['tokens']:,} | {r['spans']:,} | **{r['spans_per_1000_tokens']:.1f}** | {labels} "
            f"| {r['sentence_initial']} |"
        )
    for model, r in results.items():
        lines += ["", f"{model}, most frequent spans: " + ", ".join(f"{t} x{n}" for t, n in r["most_common"][:10])]
        lines += ["", f"{model}, examples (span in brackets):", ""] + [f"- {e}" for e in r["examples"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, default=GPL3)
    parser.add_argument("--models", type=Path, default=ROOT / "exports", help="folder of export folders to serve")
    parser.add_argument("--model", action="append", help="served model to ask (repeat; default en-ner)")
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    texts = sentences(args.text.read_text(encoding="utf-8"))
    names = args.model or ["en-ner"]
    port = free_port()
    server = start_server(args.models, port, {"TAGGER_DEFAULT_MODEL": names[0]})
    try:
        results = {name: summary(texts, tag(port, name, texts), args.examples) for name in names}
    finally:
        stop_server(server)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prose-spans.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    report = markdown(args.text, results)
    (args.out / "prose-spans.md").write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
