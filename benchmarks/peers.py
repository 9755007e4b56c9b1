"""Peers benchmark: our service beside Ray Serve, BentoML and LitServe, same model path, same load, one run.

    python benchmarks/peers.py [--peers ray bentoml litserve] [--seconds 10] [--repeat 3] [--tune-seconds 5]
                               [--no-tune --knobs ray:batch=32,wait_ms=5 ...] [--venvs /tmp/peers-venvs] [--out DIR]

Each peer serves the export the way `service.inference.process` does (`benchmarks/peer_apps/
model_path.py`: `Vocab.encode_sentence`, `pad`, an ONNX Runtime session with
1 intra-op thread, the warm-up grid, `Runtime.tag`) behind the framework's own
dynamic batching as its docs show it: Ray Serve `@serve.batch` behind a
FastAPI ingress, BentoML `@bentoml.api(batchable=True)`, LitServe
`max_batch_size`/`batch_timeout` with `batch`/`unbatch`. Each framework is
pip-installed at a pinned version into a virtual environment of its own
(--venvs), after a dry run shows its dependencies hold no torch; the apps
import `tagger` from this checkout (PYTHONPATH). Our service runs as shipped.

The load is `load.py`'s: wrk sending single-sentence EWT dev requests, every
run bounded in time, CPU from /proc over each server's whole process tree.
Phases: (1) tuning, per peer, short runs at c=64 over a small grid of its
knobs (the first group of knobs jointly, then each later one around the best
so far; a run with any error or non-2xx is out; within 5% of the best
words/s, the lower p50 wins); (2) measured, each server with its best knobs:
the same --check dev sentences sent one per request, their tags asserted
equal to ours, then c=1 and c=64, the median of --repeat runs each. All
servers bind 127.0.0.1 (Ray's internals too: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
keeps its node on loopback) and every process a server started is stopped at
the end, on errors and Ctrl+C too. Writes peers.json, .md and .png to --out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from load import DEV, ROOT, WRK_SCRIPT, free_port, measure, start_server, stop_server, wrk
from peer_apps.frameworks import PEERS, Peer, ensure_venv, parse_knobs, versions
from peer_apps.report import markdown, plot, targets
from peer_apps.servers import running_peer

from tagger.readers import read_corpus

LEVELS = [1, 64]  # connections of the measured runs
NOISE = 0.05  # tuning runs this close in words/s are a tie, broken by p50


def tune(
    peer: Peer, python: Path, args: argparse.Namespace, script: Path, words: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The knobs with the best words/s at c=64 over the peer's grid (each group around the best so far), and
    every run tried."""
    best: dict[str, Any] = {k: v[0] for k, v in peer.values.items()}
    tried: dict[str, dict[str, Any]] = {}
    for group in peer.grid:
        for values in itertools.product(*(peer.values[k] for k in group)):
            knobs = {**best, **dict(zip(group, values, strict=True))}
            key = json.dumps(knobs, sort_keys=True)
            if key not in tried:
                tried[key] = tuning_run(peer, python, knobs, args, script, words)
        ok = [r for r in tried.values() if r["ok"]]
        if ok:
            top = max(r["words_per_s"] for r in ok)
            best = min((r for r in ok if r["words_per_s"] >= (1 - NOISE) * top), key=lambda r: r["p50"])["knobs"]
    print(f"{peer.name}: best knobs {best}")
    return best, list(tried.values())


def tuning_run(
    peer: Peer, python: Path, knobs: dict[str, Any], args: argparse.Namespace, script: Path, words: float
) -> dict[str, Any]:
    """One short c=64 run of the peer with these knobs (a warm-up second first)."""
    log = args.venvs / f"{peer.name}-tuning.log"
    try:
        with running_peer(peer, python, knobs, args.model_folder, log) as tree:
            url = f"http://127.0.0.1:{tree.port}/tag"
            wrk(url, script, 64, 1)
            result = wrk(url, script, 64, args.tune_seconds)
    except (RuntimeError, subprocess.SubprocessError) as err:
        print(f"  {peer.name} {knobs}: failed ({err}; see {log})")
        return {"server": peer.name, "knobs": knobs, "ok": False, "failure": str(err)}
    rate = result["requests"] / result["seconds"] * words
    ok = result["errors"] == 0 and result["non2xx"] == 0 and result["requests"] > 0
    print(f"  {peer.name} {knobs}: {rate:8.0f} words/s  p50 {result['p50']:.1f} ms  errors {result['errors']}")
    return {"server": peer.name, "knobs": knobs, "ok": ok, "words_per_s": rate, **result}


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def answers(url: str, sentences: list[list[str]]) -> list[Any]:
    """Each sentence's answer, one request each: {"model", "version", "results"} (BentoML: the results alone)."""
    return [post(url, {"sentences": [s]}) for s in sentences]


def check_equal(name: str, got: list[Any], ours: list[Any]) -> None:
    """Raise SystemExit at the first sentence whose tags (or model and version, where given) differ from ours."""
    for i, (theirs, mine) in enumerate(zip(got, ours, strict=True)):
        results = theirs["results"] if isinstance(theirs, dict) else theirs
        if [r["tags"] for r in results] != [r["tags"] for r in mine["results"]]:
            raise SystemExit(f"{name}: sentence {i} tagged {results} where ours is {mine['results']}")
        if isinstance(theirs, dict) and (theirs["model"], theirs["version"]) != (mine["model"], mine["version"]):
            raise SystemExit(f"{name}: answers as {theirs['model']} {theirs['version']}, ours {mine['version']}")
    print(f"  {name}: tags of {len(got)} dev sentences equal ours")


def measure_ours(args: argparse.Namespace, script: Path, words: float) -> tuple[list[Any], list[dict[str, Any]]]:
    """Our service as shipped (defaults): its answers to the --check sentences, then the load rows."""
    port = free_port()
    process = start_server(args.models, port, {"TAGGER_DEFAULT_MODEL": args.model})
    try:
        url = f"http://127.0.0.1:{port}/v1/tag"
        ours = answers(url, args.checked)
        print(f"  tagger: answered {len(ours)} dev sentences (the reference)")
        return ours, measure("tagger", url, port, process.pid, script, words, LEVELS, args.seconds, args.repeat)
    finally:
        stop_server(process)


def measure_peer(
    peer: Peer, python: Path, knobs: dict[str, Any], args: argparse.Namespace, script: Path, words: float, ours: Any
) -> list[dict[str, Any]]:
    """The peer with its knobs: the --check sentences' tags asserted equal to ours, then the load rows."""
    with running_peer(peer, python, knobs, args.model_folder, args.venvs / f"{peer.name}.log") as tree:
        url = f"http://127.0.0.1:{tree.port}/tag"
        check_equal(peer.name, answers(url, args.checked), ours)
        rows = measure(
            peer.name, url, tree.port, tree.process.pid, script, words, LEVELS, args.seconds, args.repeat, False
        )
    return rows


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", nargs="+", choices=sorted(PEERS), default=list(PEERS))
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each measured run")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per cell; the table shows the median")
    parser.add_argument("--tune-seconds", type=float, default=5.0, help="duration of each tuning run (c=64)")
    parser.add_argument("--no-tune", action="store_true", help="skip tuning: each peer's --knobs, else its defaults")
    parser.add_argument("--knobs", nargs="*", default=[], help="PEER:KNOB=VALUE,... (with --no-tune)")
    parser.add_argument("--check", type=int, default=200, help="dev sentences whose tags must equal ours")
    parser.add_argument("--venvs", type=Path, default=Path("/tmp/peers-venvs"))
    parser.add_argument("--models", type=Path, default=ROOT / "exports")
    parser.add_argument("--model", default="en-upos")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    args.knobs = parse_knobs(args.knobs)
    args.model_folder = (args.models / args.model).resolve()
    return args


def phases(
    args: argparse.Namespace, pythons: dict[str, Path], sentences: list[list[str]], words: float
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Tuning (unless --no-tune), then the measured runs of every server: (knobs, tuning runs, measured rows)."""
    with tempfile.TemporaryDirectory(prefix="tagger-peers-") as tmp:
        bodies, script = Path(tmp) / "bodies.jsonl", Path(tmp) / "requests.lua"
        bodies.write_text("".join(json.dumps({"sentences": [s]}) + "\n" for s in sentences), encoding="utf-8")
        script.write_text(WRK_SCRIPT % {"bodies": bodies}, encoding="utf-8")
        knobs: dict[str, dict[str, Any]] = {"tagger": {}}
        tuning: list[dict[str, Any]] = []
        for name in args.peers:
            peer = PEERS[name]
            if args.no_tune:
                knobs[name] = {**{k: v[0] for k, v in peer.values.items()}, **args.knobs.get(name, {})}
            else:
                print(f"{name}: tuning")
                knobs[name], tried = tune(peer, pythons[name], args, script, words)
                tuning += tried
        print("measured: tagger")
        ours, rows = measure_ours(args, script, words)
        for name in args.peers:
            print(f"measured: {name} {knobs[name]}")
            rows += measure_peer(PEERS[name], pythons[name], knobs[name], args, script, words, ours)
    return knobs, tuning, rows


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # on SIGTERM too: the `finally` blocks stop every server


def main() -> int:
    started_at = time.monotonic()
    signal.signal(signal.SIGTERM, interrupted)
    args = arguments()
    args.venvs.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.venvs / "ray-tmp", ignore_errors=True)  # the last run's Ray sessions (logs)
    for name in args.peers:  # the last run's server logs (appended to during a run)
        for log in (args.venvs / f"{name}.log", args.venvs / f"{name}-tuning.log"):
            log.unlink(missing_ok=True)
    sentences = [list(s.tokens) for s in read_corpus(DEV[args.model])]
    words = sum(len(s) for s in sentences) / len(sentences)
    args.checked = sentences[: args.check]
    pythons = {name: ensure_venv(args.venvs, PEERS[name]) for name in args.peers}
    found = {"tagger": versions(Path(sys.executable), "tagger")}
    found |= {name: versions(pythons[name], name) for name in args.peers}
    load_before = os.getloadavg()
    knobs, tuning, rows = phases(args, pythons, sentences, words)
    servers = ["tagger", *args.peers]
    report = {
        "model": args.model,
        "data": str(DEV[args.model]),
        "words_per_request": words,
        "seconds_per_run": args.seconds,
        "runs_per_cell": args.repeat,
        "tune_seconds": args.tune_seconds,
        "tuned": not args.no_tune,
        "checked_sentences": len(args.checked),
        "servers": servers,
        "versions": found,
        "knobs": knobs,
        "targets": targets(rows, servers),
        "rows": rows,
        "tuning": tuning,
        "load_average_before_after": [load_before, os.getloadavg()],
        "cores": os.cpu_count(),
        "wall_seconds": time.monotonic() - started_at,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / "peers.md").write_text(text)
    plot(report, args.out / "peers.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
