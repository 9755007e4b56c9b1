"""Memory after start-up: the server and each inference process of a `tagger serve` on the shipped models.

    python benchmarks/memory.py [--models exports] [--settle 5] [--out benchmarks/results]

Starts `tagger serve` (every model in --models, so one inference process each), waits for /readyz, lets it
settle for --settle seconds with no traffic, then reads each process's resident memory from /proc: RSS, and
PSS (proportional set size: pages shared between the processes, the libraries' code, counted once in all).
PSS is the figure that adds up to what the service costs the machine. Writes memory.json and memory.md to
--out. Memory under steady load is `soak.py`'s.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.request
from pathlib import Path

from load import ROOT, free_port, start_server, stop_server
from soak import tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "exports")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle after /readyz before reading")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    port = free_port()
    server = start_server(args.models, port, {})
    try:
        time.sleep(args.settle)
        found = tree(server.pid)
        by_model = resident_by_model(port)
    finally:
        stop_server(server)
    # each inference process named by its model: the one whose resident memory /metrics reports (idle, it holds)
    processes = {"server": found.pop("server")}
    for name, sample in sorted(found.items()):
        model = min(by_model, key=lambda m: abs(by_model[m] - sample["rss_mb"]))
        processes[f"inference: {model}"] = {**sample, "pid": float(name.split()[1])}
    total = {key: sum(p[key] for p in processes.values()) for key in ("rss_mb", "pss_mb")}
    report = {"models": str(args.models), "settle_s": args.settle, "processes": processes, "total": total}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"`tagger serve --models {args.models.name}`, idle {args.settle:g} s after /readyz (`benchmarks/memory.py`)",
        "",
        "| process | RSS MB | PSS MB | fds |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {p['rss_mb']:.0f} | {p['pss_mb']:.0f} | {p['fds']:.0f} |" for n, p in processes.items()]
    lines += [f"| all | {total['rss_mb']:.0f} | {total['pss_mb']:.0f} | |"]
    markdown = "\n".join(lines) + "\n"
    (args.out / "memory.md").write_text(markdown)
    print(markdown)
    return 0


def resident_by_model(port: int) -> dict[str, float]:
    """Model -> resident MB of its inference process, as /metrics reports it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = r'^tagger_inference_process_resident_memory_bytes\{model="([^"]+)"[^}]*\} (\S+)$'
    return {model: float(value) / 2**20 for model, value in re.findall(pattern, text, re.M)}


if __name__ == "__main__":
    raise SystemExit(main())
