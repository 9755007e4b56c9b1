"""Where the CPU goes under load: py-spy samples of the server and its inference processes, by stage.

    pip install py-spy          # a sampling profiler; not a dependency of tagger
    python benchmarks/where_cpu_goes.py [--model en-upos] [--concurrency 64] [--seconds 15]

Starts `tagger serve` on 127.0.0.1, drives it with the same wrk load as
`benchmarks/load.py` (single-sentence requests from the model's dev set), and
meanwhile records each process with py-spy (100 samples a second, `--native`: time inside ONNX
Runtime's C++ counts as ONNX Runtime, not as the Python line that called it).
Each sample is put in the first stage of the table (below) that any frame of
its stack matches, so a stage holds what runs beneath it (numpy inside the
decoder counts as decoding) and the shares say what the process was doing:
parsing HTTP, validating, encoding, running the network, decoding. The
CPU per request comes from /proc, as in load.py. Writes cpu-MODEL.json and
.md to --out.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from load import DEV, ROOT, WRK_SCRIPT, descendants, free_port, start_server, stop_server, wrk

from tagger.readers import read_corpus

# (stage, pattern on a frame's "function (file:line)"): a sample is the first stage of its table that any frame
# of its stack matches, so a stage holds what runs beneath it (numpy inside the decoder is decoding)
SERVER_STAGES = [
    ("access log", r"logging/|service/observability/logs\.py"),
    ("metrics (prometheus_client)", r"prometheus_client/"),
    ("write system calls (the answer to its socket, messages to the inference process)", r"^write \(libc"),
    ("parse the request (json.loads, pydantic)", r"loads \(|json/decoder|pydantic"),
    ("encode ids (tagger.encoding)", r"tagger/encoding\.py"),
    ("tokenize, limits (service.pipeline, service.limits)", r"service/pipeline\.py|service/limits\.py"),
    (
        "write the answer (service.results, service.api.answers, json.dumps)",
        r"service/results\.py|service/api/answers\.py|dumps \(|json/encoder",
    ),
    (
        "hand-off to the inference process (service.inference.process_batcher, pickle)",
        r"service/inference/process_batcher\.py|service/inference/outstanding\.py|pickle|messages\.py",
    ),
    (
        "route code (service.api.routes, fastpath, errors)",
        r"service/api/routes\.py|service/edge/fastpath\.py|service/errors",
    ),
    ("FastAPI per-request machinery", r"fastapi/routing|fastapi/dependencies|starlette/routing|starlette/requests"),
    ("middleware (service.edge.middleware, access)", r"service/edge/middleware\.py|service/edge/access\.py"),
    ("starlette and FastAPI middleware stack", r"starlette/|fastapi/"),
    ("HTTP parsing and sockets (uvicorn, httptools, uvloop)", r"uvicorn/|httptools|uvloop|h11"),
    ("asyncio event loop", r"asyncio/"),
]
INFERENCE_STAGES = [
    ("ONNX Runtime: the network", r"onnxruntime|libonnxruntime|OrtValue|InferenceSession|mlas|Mlas"),
    ("decode: CRF Viterbi", r"_viterbi \("),
    ("decode: marginals (forward-backward), for scores and span probabilities", r"_forward_backward \("),
    ("decode: spans and their probabilities", r"_spans \(|tagger/schemes\.py"),
    ("decode: the rest (softmax, argmax, result objects)", r"tagger/decoding\.py"),
    ("pad the batch (tagger.encoding)", r"tagger/encoding\.py"),
    (
        "batch forming (service.inference.scheduling, batcher)",
        r"service/inference/scheduling\.py|service/inference/queue\.py",
    ),
    (
        "the worker loop: messages, pickle, socket",
        r"service/inference/process\.py|service/inference/messages\.py|pickle",
    ),
    ("numpy", r"numpy"),
]


def record(pid: int, seconds: float, out: Path) -> None:
    subprocess.run(
        ["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100", "--native",
         "--format", "raw", "--output", str(out)],
        check=True, capture_output=True, timeout=seconds + 120,
    )  # fmt: skip


def stages(folded: Path, table: list[tuple[str, str]]) -> dict[str, float]:
    """Share of samples per stage from py-spy's folded stacks ("frame;frame;... count" lines)."""
    patterns = [(name, re.compile(pattern)) for name, pattern in table]
    counts: collections.Counter[str] = collections.Counter()
    for line in folded.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        counts[_stage(frames, patterns)] += int(count)
    total = sum(counts.values()) or 1
    return {name: counts[name] / total for name, _ in [*table, ("other", "")] if counts[name]}


def _stage(frames: list[str], patterns: list[tuple[str, re.Pattern[str]]]) -> str:
    for name, pattern in patterns:
        if any(pattern.search(frame) for frame in frames):
            return name
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "exports")
    parser.add_argument("--model", default="en-upos")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--keep", type=Path, help="also keep py-spy's samples (folded stacks) in this folder")
    args = parser.parse_args()
    for tool in ("wrk", "py-spy"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install wrk; pip install py-spy)")
    data = args.data or DEV[args.model]
    sentences = [s.tokens for s in read_corpus(data)]
    work = Path(tempfile.mkdtemp(prefix="tagger-profile-"))
    bodies = work / "bodies.jsonl"
    bodies.write_text("".join(json.dumps({"sentences": [list(s)]}) + "\n" for s in sentences), encoding="utf-8")
    script = work / "requests.lua"
    script.write_text(WRK_SCRIPT % {"bodies": bodies}, encoding="utf-8")
    models = work / "models"  # this model alone: one inference process to profile
    models.mkdir()
    (models / args.model).symlink_to((args.models / args.model).resolve())
    port = free_port()
    server = start_server(models, port, {"TAGGER_DEFAULT_MODEL": args.model})
    try:
        url = f"http://127.0.0.1:{port}/v1/tag"
        wrk(url, script, args.concurrency, 2.0)  # warm up
        workers = [p for p in descendants(server.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        pids = {"server": server.pid, "inference": workers[0]}
        recorders = [
            threading.Thread(target=record, args=(pid, args.seconds, work / f"{name}.txt"))
            for name, pid in pids.items()
        ]
        for thread in recorders:
            thread.start()
        load = wrk(url, script, args.concurrency, args.seconds + 2, server.pid)
        for thread in recorders:
            thread.join()
    finally:
        stop_server(server)
    words = sum(len(s) for s in sentences) / len(sentences)
    report: dict[str, Any] = {
        "model": args.model,
        "concurrency": args.concurrency,
        "requests_per_s": load["requests"] / load["seconds"],
        "words_per_request": words,
        "server_us_per_request": load.get("server_us_per_request"),
        "inference_us_per_request": load.get("inference_us_per_request"),
        "note": "samples of a profiled run (py-spy pauses each process 100 times a second); the CPU per request "
        "is of that run",
        "stages": {},
    }
    for name in pids:
        table = SERVER_STAGES if name == "server" else INFERENCE_STAGES
        report["stages"][name] = stages(work / f"{name}.txt", table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"cpu-{args.model}.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"# Where the CPU goes: {args.model}, concurrency {args.concurrency}, one sentence a request",
        "",
        f"{report['requests_per_s']:.0f} requests/s while profiled; CPU per request "
        f"{report['server_us_per_request']:.0f} us in the server, {report['inference_us_per_request']:.0f} us in "
        "the inference process (from /proc).",
    ]
    for name, shares in report["stages"].items():
        us = report["server_us_per_request"] if name == "server" else report["inference_us_per_request"]
        lines += ["", f"| {name}: stage | share of samples | ~us per request |", "|---|---|---|"]
        lines += [f"| {stage} | {100 * share:.1f}% | {share * us:.0f} |" for stage, share in shares.items()]
    markdown = "\n".join(lines) + "\n"
    (args.out / f"cpu-{args.model}.md").write_text(markdown)
    print(markdown)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        for name in pids:
            shutil.copy(work / f"{name}.txt", args.keep / f"{args.model}-{name}.folded")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
