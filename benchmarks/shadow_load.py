"""The serving version's latency with a shadow beside it, against running alone, under one load, in one run.

    python benchmarks/shadow_load.py [--model en-upos] [--concurrency 1 8 32] [--seconds 8] [--repeat 3]

A `tagger serve` on copies of the shipped models (model control on); the candidate is a copy of the same model
under <models>/.shadows/ (TAGGER_SHADOW_SHARE=1: every request copied). wrk sends single-sentence dev requests
at each concurrency, alternating runs alone (no shadow) and with the shadow loaded, so that the machine's drift
over the run falls on both alike. Prints requests/s and p50/p99 of each, medians over --repeat, and the shadow's
own count of sentences compared and copies dropped. On 2 cores a shadow taking every request doubles the
inference work: what it costs the serving version is the CPU it takes, which the figures show.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import urllib.request
from pathlib import Path

from load import DEV, ROOT, WRK_SCRIPT, free_port, start_server, stop_server, wrk

from tagger.readers import read_corpus

TOKEN = "shadow-benchmark-token-0123456789"


def control(base: str, path: str, method: str = "POST") -> dict:
    request = urllib.request.Request(
        f"{base}/v2/repository/models/{path}", method=method, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def median(runs: list[dict], key: str) -> float:
    """The median over runs of requests/s ("rps") or of a latency percentile."""
    return statistics.median(r["requests"] / r["seconds"] if key == "rps" else r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="en-upos", choices=sorted(DEV))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--share", type=float, default=1.0, help="TAGGER_SHADOW_SHARE: requests copied to the shadow")
    args = parser.parse_args()
    sentences = [s.tokens for s in read_corpus(DEV[args.model])]
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        for name in ("en-upos", "en-ner"):
            shutil.copytree(ROOT / "exports" / name, models / name)
        shutil.copytree(ROOT / "exports" / args.model, models / ".shadows" / f"{args.model}-candidate")
        bodies = Path(tmp) / "bodies.jsonl"
        bodies.write_text("".join(json.dumps({"sentences": [list(s)]}) + "\n" for s in sentences))
        script = Path(tmp) / "requests.lua"
        script.write_text(WRK_SCRIPT % {"bodies": bodies}, encoding="utf-8")
        port = free_port()
        env = {"TAGGER_CONTROL_TOKEN": TOKEN, "TAGGER_SHADOW_SHARE": str(args.share)}
        process = start_server(models, port, env)
        base, url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1/models/{args.model}/tag"
        lines = [
            f"{args.model}, single-sentence dev requests; a share {args.share:g} of them copied to the shadow "
            "(a copy of the model)",
            "",
            "| concurrency | alone req/s | shadow req/s | alone p50 ms | shadow p50 ms | alone p99 ms "
            "| shadow p99 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        try:
            wrk(url, script, 8, 2)
            for connections in args.concurrency:
                runs: dict[str, list[dict]] = {"alone": [], "shadow": []}
                for _ in range(args.repeat):
                    for side in ("alone", "shadow"):
                        if side == "shadow":
                            control(base, f"{args.model}/shadow/load")
                        runs[side].append(wrk(url, script, connections, args.seconds))
                        if side == "shadow":
                            summary = control(base, f"{args.model}/shadow/discard")
                            print(
                                f"  c={connections} shadow compared {summary['sentences']} sentences, "
                                f"dropped {summary['dropped']}, tag agreement {summary['tag_agreement']}",
                                flush=True,
                            )

                row = [str(connections)] + [f"{median(runs[s], 'rps'):.0f}" for s in ("alone", "shadow")]
                row += [f"{median(runs[s], k):.2f}" for k in ("p50", "p99") for s in ("alone", "shadow")]
                lines.append("| " + " | ".join(row) + " |")
                print(lines[-1], flush=True)
        finally:
            stop_server(process)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
