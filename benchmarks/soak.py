"""A soak: steady load on a real `tagger serve` for minutes, watching memory, descriptors and the metrics.

    python benchmarks/soak.py [--minutes 5] [--every 15] [--connections 16] [--model en-upos]

wrk sends single-sentence EWT dev requests (as `load.py` does) in slices of
`--every` seconds, one after another, for `--minutes`; after each slice the
script reads, from /proc, the resident memory (RSS and PSS) and the open file
descriptors of the server and of each inference process. At the end it
checks that `/metrics` counted the requests wrk completed (plus, at most,
the ones in flight when each slice stopped: wrk closes those connections
unread, while the server answers and counts them), and that
memory settled: the figure to read is the growth after the first minute,
when the caches and the allocator have filled. Writes soak.json and soak.md
to --out.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from load import DEV, ROOT, WRK_SCRIPT, free_port, start_server, stop_server, wrk

from tagger.readers import read_corpus


def memory_and_files(pid: int) -> dict[str, float]:
    """RSS and PSS (MB) and open descriptors of one process."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()

    def field(name: str) -> float:
        match = re.search(rf"^{name}:\s+(\d+) kB", rollup, re.M)
        return int(match.group(1)) / 1024 if match else 0.0

    return {"rss_mb": field("Rss"), "pss_mb": field("Pss"), "fds": len(list(Path(f"/proc/{pid}/fd").iterdir()))}


def tree(pid: int) -> dict[str, dict[str, float]]:
    """The server and its inference processes (the multiprocessing resource tracker left out)."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    out = {"server": memory_and_files(pid)}
    for child in children:
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"resource_tracker" not in command:
            out[f"inference {child}"] = memory_and_files(child)
    return out


def counted_requests(port: int, model: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = rf'^tagger_requests_total{{model="{model}",route="/v1/tag",status="200"}} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def markdown(samples: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['minutes']} min at c={summary['connections']} on {summary['model']}: {summary['requests']:,} "
        f"requests ({summary['requests_per_s']:,.0f}/s), {summary['errors']} errors; /metrics counted "
        f"{summary['metrics_requests']:,.0f}: {summary['in_flight_at_slice_ends']:,.0f} more, the requests in "
        f"flight when the {len(samples)} wrk slices stopped (at most {summary['connections']} each)"
        f"{'' if summary['metrics_match'] else ' -- MORE THAN THAT: a miscount'}.",
        "",
        "| after s | requests/s | p99 ms | server RSS / PSS MB | fds | inference RSS / PSS MB | fds |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in samples:
        server = s["processes"]["server"]
        inference = [v for k, v in s["processes"].items() if k != "server"]
        inf = "; ".join(f"{p['rss_mb']:.0f} / {p['pss_mb']:.0f}" for p in inference)
        fds = "; ".join(str(p["fds"]) for p in inference)
        lines.append(
            f"| {s['seconds']:.0f} | {s['requests_per_s']:,.0f} | {s['p99']:.1f} | {server['rss_mb']:.0f} / "
            f"{server['pss_mb']:.0f} | {server['fds']:.0f} | {inf} | {fds} |"
        )
    lines += [
        "",
        f"Growth after the first minute: server RSS {summary['server_rss_growth_mb']:+.1f} MB, "
        f"inference RSS {summary['inference_rss_growth_mb']:+.1f} MB, server fds {summary['server_fd_growth']:+d}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--model", default="en-upos")
    parser.add_argument("--models", type=Path, default=ROOT / "exports")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    sentences = [s.tokens for s in read_corpus(DEV[args.model])]
    port = free_port()
    server = start_server(args.models, port, {"TAGGER_DEFAULT_MODEL": args.model})
    samples: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            bodies = work / "bodies.jsonl"
            bodies.write_text("".join(json.dumps({"sentences": [list(s)]}) + "\n" for s in sentences))
            script = work / "requests.lua"
            script.write_text(WRK_SCRIPT % {"bodies": bodies}, encoding="utf-8")
            url = f"http://127.0.0.1:{port}/v1/tag"
            elapsed = 0.0
            while elapsed < args.minutes * 60:
                result = wrk(url, script, args.connections, args.every)
                elapsed += result["seconds"]
                sample = {
                    "seconds": elapsed,
                    "requests": result["requests"],
                    "errors": result["errors"],
                    "requests_per_s": result["requests"] / result["seconds"],
                    "p99": result["p99"],
                    "processes": tree(server.pid),
                }
                samples.append(sample)
                print(f"  {elapsed:5.0f} s  {sample['requests_per_s']:7,.0f} req/s  {json.dumps(sample['processes'])}")
        counted = counted_requests(port, args.model)
    finally:
        stop_server(server)
    settled = next((s for s in samples if s["seconds"] >= 60), samples[0])
    last = samples[-1]

    def inference_rss(sample: dict[str, Any]) -> float:
        return sum(v["rss_mb"] for k, v in sample["processes"].items() if k != "server")

    total = sum(s["requests"] for s in samples)
    summary = {
        "minutes": args.minutes,
        "connections": args.connections,
        "model": args.model,
        "requests": total,
        "requests_per_s": total / last["seconds"],
        "errors": sum(s["errors"] for s in samples),
        "metrics_requests": counted,
        # each wrk slice stops with up to `connections` requests in flight: answered and counted by the server
        "in_flight_at_slice_ends": counted - total,
        "metrics_match": 0 <= counted - total <= args.connections * len(samples),
        "server_rss_growth_mb": last["processes"]["server"]["rss_mb"] - settled["processes"]["server"]["rss_mb"],
        "inference_rss_growth_mb": inference_rss(last) - inference_rss(settled),
        "server_fd_growth": int(last["processes"]["server"]["fds"] - settled["processes"]["server"]["fds"]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps({"summary": summary, "samples": samples}, indent=1) + "\n")
    (args.out / "soak.md").write_text(markdown(samples, summary))
    print(markdown(samples, summary))
    return 0 if summary["metrics_match"] and not summary["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
