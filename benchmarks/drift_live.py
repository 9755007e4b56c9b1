"""Drift as a user sees it: a real `tagger serve` on the shipped models, text replayed at it, and what
`GET /v1/models/{model}/drift` then says against each model's reference.

    python benchmarks/drift_live.py [--sentences 1000]

For each kind of text (in domain: UNER-EWT dev, the text of both references; WNUT-17 test; the dev text
lower-cased, upper-cased, and in another script), a fresh server is started, the text is POSTed to both models
in requests of 16 sentences, and the route's figures since start are printed against the reference: unknown-word
rate and low-confidence share (as ratios to the reference's) and the PSI of the case, script and tag mixes, the
figures the alerts of deploy/prometheus/alerts.yml read. Writes results/drift-live.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from load import free_port

from tagger.readers import read_corpus

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
_CYRILLIC = "абцдефгхийклмнопкрстуввжыз"
CYRILLIC = str.maketrans("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", _CYRILLIC + _CYRILLIC.upper())
MODELS = ("en-ner", "en-upos")


def call(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"content-type": "application/json"}, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def replay(text: list[list[str]]) -> dict[str, dict]:
    """The drift route of each model after `text` was tagged by a fresh server."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--models", str(ROOT / "exports"), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                call(f"{base}/readyz")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.5)
        for model in MODELS:
            for at in range(0, len(text), 16):
                call(f"{base}/v1/models/{model}/tag", {"sentences": text[at : at + 16]})
        time.sleep(1.5)  # the inference processes send their counts every half second
        return {model: call(f"{base}/v1/models/{model}/drift") for model in MODELS}
    finally:
        server.terminate()
        server.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1000)
    args = parser.parse_args()
    dev = [s.tokens for s in read_corpus(DATA / "uner-english-ewt" / "en_ewt-ud-dev.iob2")[: args.sentences]]
    wnut = [s.tokens for s in read_corpus(DATA / "wnut17" / "test.conll")[: args.sentences]]
    texts = {
        "in domain (UNER-EWT dev)": dev,
        "social media (WNUT-17 test)": wnut,
        "lower-cased dev": [[t.lower() for t in s] for s in dev],
        "upper-cased dev": [[t.upper() for t in s] for s in dev],
        "dev in Cyrillic letters": [[t.translate(CYRILLIC) for t in s] for s in dev],
    }
    lines = ["# Drift as the service reports it (benchmarks/drift_live.py)", ""]
    lines += [
        f"{args.sentences} sentences of each text through a fresh `tagger serve`; GET /v1/models/{{model}}/drift.",
        "",
    ]
    for model in MODELS:
        lines += [
            f"## {model}",
            "",
            "| text | tokens | unknown x ref | low conf. x ref | PSI case | PSI script | PSI tags |",
        ]
        lines += ["|---|---|---|---|---|---|---|"]
        for name, text in texts.items():
            report = replay(text)[model]["since_start"]
            against = report["against_reference"]
            row = [name, str(report["tokens"]), f"{against['unknown_rate_ratio']:.2f}x"]
            row += [f"{against['low_confidence_ratio']:.2f}x"]
            row += [f"{against[k]:.3f}" for k in ("case_psi", "script_psi", "tag_psi")]
            lines.append("| " + " | ".join(row) + " |")
            print(model, row, flush=True)
        lines.append("")
    out = ROOT / "benchmarks" / "results" / "drift-live.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
