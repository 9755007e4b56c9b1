"""Load benchmark: the service under single-sentence requests, against its own ceilings.

    python benchmarks/load.py [--model en-upos [en-ner]] [--data DEV_FILE] [--seconds 10] [--repeat 3]
                              [--concurrency 1 16 64]

Starts `tagger serve` on 127.0.0.1 and drives it with wrk (Debian package `wrk`;
C, one thread, so the load generator takes little of the 2 cores) sending
single-sentence requests drawn from a dev set (EWT dev for en-upos, and its
UNER-EWT copy for en-ner: the same sentences). With several models, each is
measured in turn and a table puts them side by side (load-A-B.md). Each run is bounded in time (`--seconds`) and so in
requests; each cell is the median of `--repeat` runs (machines of this kind
move by 10-20% from run to run). In the same run it measures:

- batching on (the service as shipped) at each concurrency;
- batching off (TAGGER_BATCHING=false: every sentence alone, batch size 1);
- an echo endpoint on the same stack (parse + validate + serialize, no model):
  the HTTP + JSON ceiling;
- the model in a thread of the server process (TAGGER_INFERENCE_PROCESS=false),
  the design before inference processes, for comparison;
- the raw ONNX Runtime ceiling: length-sorted batches of 32, in-process, same
  model and threads, no HTTP.

Each row also says where the CPU went (Linux /proc): microseconds of CPU per
request in the server process, in its inference processes and in wrk, and
how busy the machine's cores were; that is what says what limits a mode.

With `--spacy-python PYTHON` (an interpreter that has spaCy), the same run
also measures spaCy's tagger in-process on the same sentences
(`benchmarks/spacy_baseline.py`), the rival the service should beat over HTTP.

Every row also gives the whole service's words per CPU-second (server and
inference processes, wrk left out): with `--spacy-python`, the figure to set
beside spaCy's in-process words per CPU-second.

Writes load-MODEL.json, .md and .png to --out, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tagger.readers import read_corpus
from tagger.runtime import load_runtime

ROOT = Path(__file__).resolve().parents[1]

DATA = ROOT.parent / "shared" / "data"
# en-ner on UNER-EWT dev: the same sentences as en-upos's EWT dev, running web text (what it is shipped for)
DEV = {
    "en-upos": DATA / "ud-english-ewt" / "en_ewt-ud-dev.conllu",
    "en-ner": DATA / "uner-english-ewt" / "en_ewt-ud-dev.iob2",
}

WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "errors": %%d, "non2xx": %%d, "p50": %%f, "p95": %%f, "p99": %%f}\\n',
    summary.requests, summary.duration / 1e6, errors, summary.errors.status,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    models: Path, port: int, env: dict[str, str], tree: Path | None = None, module: str = "cli"
) -> subprocess.Popen[bytes]:
    """`tagger serve` on 127.0.0.1:port until /readyz is 200; with `tree`, that checkout's code (`python -m module`)."""
    environment = {**os.environ, **env, **({"PYTHONPATH": str(tree)} if tree is not None else {})}
    tagger = [sys.executable, "-m", module, "serve", "--models", str(models), "--port", str(port)]
    process = subprocess.Popen(tagger, env=environment, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(process, f"http://127.0.0.1:{port}/readyz")
    except RuntimeError:
        process.kill()
        raise
    return process


def wait_ready(process: subprocess.Popen[bytes], url: str, seconds: float = 120) -> None:
    """Until GET `url` answers 200; RuntimeError if the process exits first or `seconds` pass (the caller stops it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not become ready in {seconds:g} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def scrape(port: int) -> dict[str, float]:
    """Sums of the batch histograms from /metrics (to diff before/after a run)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for name in ("tagger_batch_padding_ratio_sum", "tagger_batch_padding_ratio_count", "tagger_batch_sentences_sum"):
        out[name] = sum(float(m) for m in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))
    return out


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """CPU seconds (user + system) of a process, and of its live descendants together; None without /proc."""

    def of(p: int) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a child that exited in between
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    if not Path(f"/proc/{pid}/task/{pid}/children").is_file():  # needs CONFIG_PROC_CHILDREN
        return None
    return of(pid), sum(of(c) for c in descendants(pid))


def descendants(pid: int) -> list[int]:
    """Pids of a process's live children, theirs and so on (started by any of their threads); needs /proc."""
    found: list[int] = []
    todo = [pid]
    while todo:
        for children in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                born = [int(c) for c in children.read_text().split()]
            except OSError:  # a thread or process that exited in between
                continue
            found += born
            todo += born
    return found


def wrk(url: str, script: Path, connections: int, seconds: float, server: int | None = None) -> dict[str, Any]:
    """One wrk run; with the `server` pid, also the CPU microseconds per request of each party."""
    duration = f"-d{max(1, round(seconds))}s"  # wrk takes whole seconds only
    command = ["wrk", "-t1", f"-c{connections}", duration, "--timeout", "30s", "-s", str(script), url]
    before = cpu_seconds(server) if server else None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    after, used = (cpu_seconds(server) if server else None), resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"^RESULT (\{.*\})$", output, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    result: dict[str, Any] = json.loads(match.group(1))
    if before is not None and after is not None and result["requests"]:
        per_request = 1e6 / result["requests"]
        client = used.ru_utime + used.ru_stime - usage.ru_utime - usage.ru_stime
        server_cpu, inference_cpu = after[0] - before[0], after[1] - before[1]
        result |= {
            "server_us_per_request": server_cpu * per_request,
            "inference_us_per_request": inference_cpu * per_request,
            "wrk_us_per_request": client * per_request,
            "cores_busy": (server_cpu + inference_cpu + client) / result["seconds"],
        }
    return result


def measure(
    name: str,
    url: str,
    port: int,
    server: int,
    script: Path,
    words: float,
    levels: list[int],
    seconds: float,
    repeat: int,
    batch_metrics: bool = True,
) -> list[dict[str, Any]]:
    """One row per concurrency: the run with the median requests/s of `repeat` runs (batch figures over all,
    from the service's /metrics unless `batch_metrics` is false: a server that is not ours has none)."""
    rows = []
    for connections in levels:
        wrk(url, script, connections, min(2.0, seconds))  # warm the connections and the caches
        before = scrape(port) if batch_metrics and name != "echo" else {}
        runs = sorted((wrk(url, script, connections, seconds, server) for _ in range(repeat)), key=per_second)
        result = runs[len(runs) // 2]
        rps = per_second(result)
        row = {
            "mode": name,
            "concurrency": connections,
            "requests_per_s": rps,
            "words_per_s": rps * words,
            "runs_requests_per_s": [round(per_second(r)) for r in runs],
            **result,
        }
        if before:
            after = scrape(port)
            batches = after["tagger_batch_padding_ratio_count"] - before["tagger_batch_padding_ratio_count"]
            padding = after["tagger_batch_padding_ratio_sum"] - before["tagger_batch_padding_ratio_sum"]
            sentences = after["tagger_batch_sentences_sum"] - before["tagger_batch_sentences_sum"]
            row |= {"mean_padding_ratio": padding / batches if batches else 0.0, "mean_batch": sentences / batches}
        print(
            f"  {name:>8} c={connections:<3} {rps:8.0f} req/s  p50 {result['p50']:.2f} ms  p99 {result['p99']:.2f} ms"
            f"  (runs: {row['runs_requests_per_s']})"
        )
        rows.append(row)
    return rows


def per_second(result: dict[str, Any]) -> float:
    return float(result["requests"] / result["seconds"])


def onnx_ceiling(models: Path, model: str, sentences: list[tuple[str, ...]], threads: int) -> float:
    """Words/s of ONNX Runtime alone on length-sorted batches of 32 (encoding included)."""
    runtime = load_runtime(models / model, intra_threads=threads)
    runtime.score_sentences(sentences[:256], batch_size=32)  # warm up
    started = time.perf_counter()
    runtime.score_sentences(sentences, batch_size=32)
    return sum(len(s) for s in sentences) / (time.perf_counter() - started)


def table(rows: list[dict[str, Any]], ceiling: float) -> str:
    lines = [
        "| mode | concurrency | requests/s | words/s | p50 ms | p95 ms | p99 ms | mean batch | padding | non-2xx "
        "| CPU us/request: server / inference / wrk | cores busy | words per CPU-s (server + inference) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        batch = f"{r['mean_batch']:.1f}" if "mean_batch" in r else "-"
        padding = f"{100 * r['mean_padding_ratio']:.1f}%" if "mean_padding_ratio" in r else "-"
        lines.append(
            f"| {r['mode']} | {r['concurrency']} | {r['requests_per_s']:.0f} | {r['words_per_s']:.0f} | "
            f"{r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | {batch} | {padding} | {r['non2xx']} | {cpu(r)} | "
            + (f"{r['words_per_cpu_s']:.0f} |" if "words_per_cpu_s" in r else "- |")
        )
    lines.append(
        f"| onnxruntime, in-process, sorted batches of 32 | - | - | {ceiling:.0f} | - | - | - | 32 |" + " - |" * 5
    )
    return "\n".join(lines)


def cpu(row: dict[str, Any]) -> str:
    """The CPU cells of a row: where the CPU went per request, and the cores busy (- without /proc)."""
    if "cores_busy" not in row:
        return "- | -"
    parts = (row["server_us_per_request"], row["inference_us_per_request"], row["wrk_us_per_request"])
    return " / ".join(f"{p:.0f}" for p in parts) + f" | {row['cores_busy']:.2f}"


def ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    def at(mode: str, c: int) -> dict[str, Any]:
        return next(r for r in rows if r["mode"] == mode and r["concurrency"] == c)

    top, low = max(r["concurrency"] for r in rows), min(r["concurrency"] for r in rows)
    return {
        f"words/s batching on / off at c={top}": at("batching", top)["words_per_s"]
        / at("no-batch", top)["words_per_s"],
        f"words/s batching on / echo at c={top}": at("batching", top)["words_per_s"] / at("echo", top)["words_per_s"],
        f"p50 batching on / off at c={low}": at("batching", low)["p50"] / at("no-batch", low)["p50"],
        f"mean padding ratio at c={top}": at("batching", top)["mean_padding_ratio"],
    }


def spacy_words_per_s(python: str, data: Path, work: Path) -> tuple[float, float]:
    """spaCy's tagger in-process on the same sentences, run by an interpreter that has spaCy: (words per second,
    words per CPU-second)."""
    script = ROOT / "benchmarks" / "spacy_baseline.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the project's reader, in an interpreter that may lack tagger
    subprocess.run([python, str(script), "--data", str(data), "--out", str(work)], check=True, timeout=600, env=env)
    result = json.loads((work / "spacy-baseline.json").read_text())
    return float(result["words_per_s"]), float(result["words_per_cpu_s"])


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in ("batching", "no-batch", "echo", "server-thread"):
        mine = [r for r in rows if r["mode"] == mode]
        levels = [r["concurrency"] for r in mine]
        left.plot(levels, [r["words_per_s"] for r in mine], "o-", label=mode)
        right.plot(levels, [r["p99"] for r in mine], "o-", label=mode)
    for axis, label in ((left, "words/s"), (right, "p99 latency (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent connections")
        axis.set_ylabel(label)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "exports")
    parser.add_argument("--model", nargs="+", default=["en-upos"], help="one run per model; with several, a table")
    parser.add_argument("--data", type=Path, help="sentences to send (default: the model's dev set)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each measured run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the table shows the median")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (0 = per core)")
    parser.add_argument(
        "--modes", nargs="+", default=["batching", "no-batch", "echo", "server-thread"], help="for quick tuning runs"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--spacy-python", help="a Python with spaCy installed: also measure spaCy's tagger")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    reports = [bench(args, model) for model in args.model]
    if len(reports) > 1:
        markdown = models_table(reports)
        (args.out / f"load-{'-'.join(args.model)}.md").write_text(markdown)
        print(markdown)
    return 0


def bench(args: argparse.Namespace, model: str) -> dict[str, Any]:
    """One model's runs (every mode and concurrency), written to load-MODEL.json, .md and .png."""

    data = args.data if args.data is not None and len(args.model) == 1 else DEV.get(model)
    if data is None:
        raise SystemExit(f"no default data for model {model!r}: pass --data FILE")
    sentences = [s.tokens for s in read_corpus(data)]
    words = sum(len(s) for s in sentences) / len(sentences)
    work = Path(tempfile.mkdtemp(prefix="tagger-bench-"))
    bodies = work / "bodies.jsonl"
    bodies.write_text("".join(json.dumps({"sentences": [list(s)]}) + "\n" for s in sentences), encoding="utf-8")
    script = work / "requests.lua"
    script.write_text(WRK_SCRIPT % {"bodies": bodies}, encoding="utf-8")
    base = {"TAGGER_DEFAULT_MODEL": model, "TAGGER_INTRA_THREADS": str(args.threads)}
    modes = [
        ("batching", "/v1/tag", {}),
        ("no-batch", "/v1/tag", {"TAGGER_BATCHING": "false"}),
        ("echo", "/v1/echo", {"TAGGER_ECHO_ENDPOINT": "true", "TAGGER_WARMUP": "false"}),
        # the model in a thread of the server process (as before inference processes), for comparison
        ("server-thread", "/v1/tag", {"TAGGER_INFERENCE_PROCESS": "false"}),
    ]
    rows: list[dict[str, Any]] = []
    for name, path, env in [m for m in modes if m[0] in args.modes]:
        port = free_port()
        print(f"{name}: starting the service on 127.0.0.1:{port}")
        process = start_server(args.models, port, {**base, **env})
        try:
            url = f"http://127.0.0.1:{port}{path}"
            rows += measure(name, url, port, process.pid, script, words, args.concurrency, args.seconds, args.repeat)
        finally:
            stop_server(process)
    ceiling = onnx_ceiling(args.models, model, sentences, args.threads)
    summary = ratios(rows) if {"batching", "no-batch", "echo"} <= set(args.modes) else {}
    for row in rows:  # the whole service's (server and inference processes), wrk left out
        if "cores_busy" in row:
            row["words_per_cpu_s"] = words * 1e6 / (row["server_us_per_request"] + row["inference_us_per_request"])
    spacy, spacy_cpu = spacy_words_per_s(args.spacy_python, data, work) if args.spacy_python else (None, None)
    if spacy is not None and spacy_cpu is not None and "batching" in args.modes:
        top = max(args.concurrency)
        best = next(r for r in rows if r["mode"] == "batching" and r["concurrency"] == top)
        summary[f"words/s batching over HTTP at c={top} / spaCy in-process"] = best["words_per_s"] / spacy
        if "words_per_cpu_s" in best:
            summary[f"words per CPU-second, the service at c={top} / spaCy in-process"] = (
                best["words_per_cpu_s"] / spacy_cpu
            )
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "model": model,
        "data": str(data),
        "words_per_request": words,
        "seconds_per_run": args.seconds,
        "runs_per_cell": args.repeat,
        "rows": rows,
        "onnx_ceiling_words_per_s": ceiling,
        "spacy_in_process_words_per_s": spacy,
        "spacy_in_process_words_per_cpu_s": spacy_cpu,
    }
    stem = f"load-{model}"
    (args.out / f"{stem}.json").write_text(json.dumps({**report, "ratios": summary}, indent=1) + "\n")
    markdown = table(rows, ceiling)
    if spacy is not None:
        markdown += (
            f"\n| spaCy tok2vec + tagger, in-process, batches of 256 | - | - | {spacy:.0f} |"
            + " - |" * 8
            + f" {spacy_cpu:.0f} |"
        )
        markdown += f"\n\nspaCy in-process: {spacy_cpu:.0f} words per CPU-second."
    markdown += "\n\n" + "\n".join(f"- {k}: {v:.2f}" for k, v in summary.items()) + "\n"
    (args.out / f"{stem}.md").write_text(markdown)
    plot(rows, args.out / f"{stem}.png")
    print(markdown)
    shutil.rmtree(work, ignore_errors=True)
    return report


def models_table(reports: list[dict[str, Any]]) -> str:
    """The models side by side, batching as shipped, at each concurrency."""
    lines = [
        "| model | words/request | concurrency | requests/s | words/s | p50 ms | p99 ms | mean batch "
        "| CPU us/request: server / inference | words per CPU-s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        for r in (r for r in report["rows"] if r["mode"] == "batching"):
            cpu = f"{r.get('server_us_per_request', 0):.0f} / {r.get('inference_us_per_request', 0):.0f}"
            lines.append(
                f"| {report['model']} | {report['words_per_request']:.1f} | {r['concurrency']} | "
                f"{r['requests_per_s']:.0f} | {r['words_per_s']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                f"{r.get('mean_batch', 0):.1f} | {cpu} | {r.get('words_per_cpu_s', 0):.0f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
