"""Drift figures offline: each shipped model's reference profile against shifted text, and what counting costs.

    python benchmarks/drift_offline.py [--model en-ner en-upos] [--speed]

For each model, the figures the service will count live (tagger.profile's
Profiler, the same code), computed with ONNX Runtime on:

- `dev`: the model's own dev file (should equal its profile.json);
- `wnut17`: WNUT-17 test, social media;
- `lower` / `upper`: the dev file lower-cased / upper-cased;
- `cyrillic`: the dev file with Latin letters transliterated to Cyrillic (text in another script).

Prints, against the reference in the export's profile.json: the unknown-word
rate, the case mix, the low-confidence share (ratios to the reference), the
population stability index (PSI) of the tag mix, the case mix and the script
mix, and the tag shares; writes results/drift-offline.md. These are the
figures alert thresholds are set from. `--speed` also times the counting per
token on the dev set, in batches of 32 as the batcher forms them, with the
token cache cold (every token new) and warm.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tagger.artifact import load_profile
from tagger.encoding import length_sorted
from tagger.profile import CASES, Profile, Profiler, psi
from tagger.readers import read_corpus
from tagger.runtime import Runtime, load_runtime

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WNUT17_TEST = DATA / "wnut17" / "test.conll"
_CYRILLIC = dict(zip("abcdefghijklmnopqrstuvwxyz", "абцдефгхийклмнопкрстуввжыз", strict=True))


def cyrillic(token: str) -> str:
    """Latin letters to Cyrillic, case kept: "Paris" -> "Парис"."""
    return "".join(map(_cyrillic_char, token))


def _cyrillic_char(ch: str) -> str:
    low = ch.lower()
    if low not in _CYRILLIC:
        return ch
    return _CYRILLIC[low] if ch == low else _CYRILLIC[low].upper()


SHIFTS: dict[str, Callable[[str], str]] = {"lower": str.lower, "upper": str.upper, "cyrillic": cyrillic}


def measured(runtime: Runtime, sentences: Sequence[Sequence[str]]) -> Profile:
    """The live figures the service would count on `sentences`."""
    profiler = Profiler(runtime.vocab, runtime.decoder)
    counts = profiler.counts()
    profiler.count(counts, sentences, runtime.tag_sentences(sentences))
    return counts.profile()


def texts(runtime: Runtime) -> dict[str, list[tuple[str, ...]]]:
    dev_path = runtime.metadata.config["data"]["dev"]
    dev = [s.tokens for s in read_corpus(dev_path, runtime.metadata.config["data"].get("format", "auto"))]
    out = {"dev": dev, "wnut17": [s.tokens for s in read_corpus(WNUT17_TEST, "conll")]}
    for name, shift in SHIFTS.items():
        out[name] = [tuple(map(shift, s)) for s in dev]
    return out


def _ratio(live: float, reference: float) -> str:
    return f"{live / reference:.2f}x" if reference else "-"


def report(name: str, reference: Profile, live: dict[str, Profile]) -> list[str]:
    lines = [f"## {name}", "", f"reference: {reference.source.get('data')} ({reference.tokens} tokens)", ""]
    lines += [
        "| text | tokens | unknown | ratio | low conf. | ratio | case lower/upper/title/other | PSI tags | PSI case "
        "| PSI script | spans/100 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = {"reference": reference, **live}
    for text, p in rows.items():
        case = "/".join(f"{p.case_mix[c]:.3f}" for c in CASES)
        spans = sum(p.spans_per_100_tokens.values())
        lines.append(
            f"| {text} | {p.tokens} | {p.unknown_rate:.4f} | {_ratio(p.unknown_rate, reference.unknown_rate)} "
            f"| {p.low_confidence_share:.4f} | {_ratio(p.low_confidence_share, reference.low_confidence_share)} "
            f"| {case} | {psi(p.tag_shares, reference.tag_shares):.3f} | {psi(p.case_mix, reference.case_mix):.3f} "
            f"| {psi(p.script_mix, reference.script_mix):.3f} | {spans:.2f} |"
        )
    lines += ["", f"low confidence: chosen tag's probability <= {reference.low_confidence_threshold}", ""]
    lines += ["| tag | " + " | ".join(rows) + " |", "|---|" + "---|" * len(rows)]
    for tag in reference.tag_shares:
        lines.append(f"| {tag} | " + " | ".join(f"{p.tag_shares[tag]:.4f}" for p in rows.values()) + " |")
    return [*lines, ""]


def speed(runtime: Runtime, sentences: Sequence[Sequence[str]], batch_size: int = 32, passes: int = 5) -> list[str]:
    """Microseconds per token of counting (the network and decoder run beforehand, not timed): the first pass
    with every token new to the cache, then the best of `passes` warm passes."""
    batches = []
    for indices in length_sorted([len(s) for s in sentences], batch_size):
        chosen = [sentences[i] for i in indices]
        batches.append((chosen, runtime.tag(runtime.vocab.encode(chosen))))
    tokens = sum(len(s) for s in sentences)
    profiler = Profiler(runtime.vocab, runtime.decoder)
    seconds = []
    for _ in range(passes + 1):
        counts = profiler.counts()
        started = time.perf_counter()
        for chosen, decoded in batches:
            profiler.count(counts, chosen, decoded)
        seconds.append(time.perf_counter() - started)
    return [
        f"- counting, cold cache (first pass): {seconds[0] / tokens * 1e6:.3f} us a token",
        f"- counting, warm cache (best of {passes}): {min(seconds[1:]) / tokens * 1e6:.3f} us a token",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", default=["en-ner", "en-upos"], help="shipped exports to measure")
    parser.add_argument("--speed", action="store_true", help="also time the counting per token")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "drift-offline.md"))
    args = parser.parse_args(argv)
    lines = ["# Drift figures offline (benchmarks/drift_offline.py)", ""]
    for name in args.model:
        runtime = load_runtime(ROOT / "exports" / name, intra_threads=1)
        reference = load_profile(runtime.folder, runtime.metadata)
        if reference is None:
            raise SystemExit(f"{runtime.folder} has no profile.json; run `tagger profile {runtime.folder}` first")
        found = texts(runtime)
        lines += report(name, reference, {text: measured(runtime, s) for text, s in found.items()})
        if args.speed:
            lines += [
                f"{name}, {sum(map(len, found['dev']))} dev tokens in batches of 32:",
                *speed(runtime, found["dev"]),
                "",
            ]
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
