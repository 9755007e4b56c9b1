"""Chaos: clients on both shipped models while inference processes are stopped, killed and swapped under them.

    python benchmarks/chaos.py [--minutes 10] [--clients 32] [--seed 1] [--out benchmarks/results/chaos.md]

A real `tagger serve` polls a models folder (TAGGER_MODEL_POLL_S=1) holding copies of exports/en-ner and
exports/en-upos. `--clients` threads send requests to both models, on /v1 and /v2 alike, each on a keep-alive
connection, for `--minutes`; meanwhile two scripts of chaos run at random:

- processes: SIGSTOP an inference process for 1 to 40 s (past TAGGER_INFERENCE_STALL_TIMEOUT_S sometimes:
  then it is killed and replaced) and SIGCONT it, or SIGKILL one;
- the folder: swap a model to another version (its vocab.json written anew with other whitespace, the sha256 in
  its metadata.json to match: a changed file, so a new version the poll loads beside the old and swaps in), drop
  a malformed folder (metadata not JSON, a field of the wrong type, a file its metadata lists missing, a graph
  that is not its sha256) and remove it a few seconds later.

Every answer is sorted: served (200), refused with a documented status (a 503 with Retry-After, a 504), or lost
(a connection error, any other status: the goal is 0). A monitor reads /readyz every 0.1 s; /readyz is wrong while
it says 200 with a serving inference process stopped or just killed (until it first says 503; serving: one
process per model, no swap in flight, since a version loading or draining serves nothing), and while it says 503
although nothing is stopped and no process was killed in the last KILL_GRACE_S. RSS and open descriptors of the server
process are read at the start (ready, before any load) and at the end (after the load stopped). Prints a Markdown
report and writes it to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("en-ner", "en-upos")
TEXTS = [
    "Angela Merkel visited Paris on Monday .",
    "The quick brown fox jumps over the lazy dog .",
    "Apple is looking at buying a U.K. startup for $ 1 billion .",
    "I flew from New York to San Francisco last week with Delta .",
    "She said the meeting in Berlin was postponed until further notice .",
    "Barack Obama was born in Hawaii .",
]
JSON = {"content-type": "application/json"}
KILL_GRACE_S = 15.0  # after a SIGKILL, a 503 is right until the replacement is ready (restart back-off, warm-up)


@dataclass
class Tally:
    """What the clients saw, shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    served: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=dict)  # by status: as the client saw it

    def add(self, kind: str, what: str = "", status: int = 0, seconds: float = 0.0) -> None:
        with self.lock:
            if status:
                self.seconds.setdefault(str(status), []).append(seconds)
                if kind == "refused":  # and by reason: a refusal at admission, or a wait that ended in one
                    self.seconds.setdefault(what, []).append(seconds)
            if kind == "served":
                self.served += 1
            elif kind == "refused":
                self.refused[what] += 1
            else:
                self.lost[what] += 1


@dataclass
class Faults:
    """Ground truth for /readyz: inference processes stopped now, and when each kill happened."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: dict[int, tuple[float, bool]] = field(default_factory=dict)  # pid -> when, serving (one per model)
    kills: list[tuple[float, bool]] = field(default_factory=list)  # when, and whether the process was serving
    log: list[str] = field(default_factory=list)


def request_for(model: str, rng: random.Random) -> tuple[str, bytes]:
    text = rng.choice(TEXTS)
    if rng.random() < 0.5:
        body: dict[str, Any] = {"sentences": [text.split()]} if rng.random() < 0.5 else {"texts": [text]}
        return f"/v1/models/{model}/tag", json.dumps(body).encode()
    tensor = {"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}
    return f"/v2/models/{model}/infer", json.dumps({"inputs": [tensor]}).encode()


def client(port: int, seed: int, until: float, tally: Tally, think: float) -> None:
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < until:
        path, body = request_for(rng.choice(MODELS), rng)
        sent = time.perf_counter()
        try:
            connection.request("POST", path, body, {"content-type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as err:
            tally.add("lost", f"{type(err).__name__} on {path.split('/')[1]}")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        took = time.perf_counter() - sent
        if response.status == 200:
            tally.add("served", status=200, seconds=took)
        elif response.status == 504 or (response.status == 503 and response.getheader("retry-after")):
            tally.add("refused", f"{response.status} {reason_of(answer)}", response.status, took)
        else:
            tally.add("lost", f"{response.status} {path.split('/')[1]} {answer[:120]!r}", response.status, took)
        if think:
            time.sleep(rng.random() * think)
    connection.close()


def probe(port: int, seconds: float) -> list[float]:
    """One client in a process of its own (no GIL shared with the load's threads): every 0.2 s, on a new
    connection, a request refused at once by validation (422, an empty sentence): how long the server takes to
    get to a request, since every refusal, 503s included, is decided only once it has read the request."""
    out = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sent = time.perf_counter()
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection.request("POST", "/v1/models/en-upos/tag", b'{"sentences": [[]]}', JSON)
            if connection.getresponse().status == 422:
                out.append(time.perf_counter() - sent)
        connection.close()
        time.sleep(0.2)
    return out


def reason_of(answer: bytes) -> str:
    """/v1's reason, or /v2's message cut to its first words (the protocol carries no reason)."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        error = json.loads(answer)["error"]
        if isinstance(error, dict):
            return str(error["reason"])
        return "/v2: " + " ".join(str(error).split()[:4])
    return "?"


def inference_pids(server: int) -> list[int]:
    try:
        children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    except OSError:
        return []
    pids = []
    for child in children:
        with contextlib.suppress(OSError):
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                pids.append(int(child))
    return pids


def processes_chaos(server: int, until: float, faults: Faults, rng: random.Random) -> None:
    """Stop (then continue) or kill a random inference process, one fault at a time, until `until`."""
    while time.monotonic() < until - 5:
        time.sleep(rng.uniform(2, 8))
        pids = inference_pids(server)
        if not pids:
            continue
        pid = rng.choice(pids)
        serving = len(pids) == len(MODELS)  # else a swap is in flight: this may be a version loading or draining
        if rng.random() < 0.7:
            hold = rng.choice([rng.uniform(1, 8), rng.uniform(8, 20), rng.uniform(32, 40)])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                with faults.lock:
                    faults.stopped[pid] = (time.monotonic(), serving)
                    faults.log.append(f"stop {pid} {hold:.0f} s")
            time.sleep(min(hold, max(0.0, until - time.monotonic())))
            with faults.lock:
                faults.stopped.pop(pid, None)
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:  # killed by the server as hung, and gone: its replacement may be starting
                with faults.lock:  # a 503 is right while its replacement starts; /readyz was judged while it hung
                    faults.kills.append((time.monotonic(), False))
                    faults.log.append(f"  {pid} was gone at SIGCONT (replaced as hung)")
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                with faults.lock:
                    faults.kills.append((time.monotonic(), serving))
                    faults.log.append(f"kill {pid}")


def with_vocab(source: Path, target: Path, indent: int | None) -> None:
    """`source` copied to `target` with its vocab.json written with other whitespace, and its sha256 recorded."""
    shutil.copytree(source, target)
    vocab = json.dumps(json.loads((source / "vocab.json").read_text(encoding="utf-8")), indent=indent).encode()
    (target / "vocab.json").write_bytes(vocab)
    metadata = json.loads((source / "metadata.json").read_text(encoding="utf-8"))
    metadata["files"]["vocab.json"] = hashlib.sha256(vocab).hexdigest()
    (target / "metadata.json").write_text(json.dumps(metadata, indent=1), encoding="utf-8")


def swap(folder: Path, variant: Path) -> None:
    """Give `folder` the files of `variant` in place, each replaced whole, metadata.json (the new sha256s) last."""
    for name in [*sorted(p.name for p in variant.iterdir() if p.name != "metadata.json"), "metadata.json"]:
        shutil.copyfile(variant / name, folder / f".{name}.new")
        os.replace(folder / f".{name}.new", folder / name)


def malformed(models: Path, n: int, rng: random.Random) -> Path:
    """A broken export folder under a name of its own: one of the ways a folder goes wrong."""
    folder = models / f"broken-{n}"
    source = ROOT / "exports" / "en-upos"
    kind = rng.choice(["not json", "wrong type", "missing file", "bad sha256"])
    if kind == "not json":
        folder.mkdir()
        (folder / "metadata.json").write_text("{not json", encoding="utf-8")
        return folder
    staging = models.parent / f"staging-{n}"
    shutil.copytree(source, staging)
    metadata = json.loads((staging / "metadata.json").read_text(encoding="utf-8"))
    metadata["name"] = folder.name
    if kind == "wrong type":
        metadata[rng.choice(["task", "scheme", "exported_at"])] = rng.choice([123, {"a": 1}, ["IOB2"]])
    elif kind == "missing file":
        (staging / "vocab.json").unlink()
    else:
        with open(staging / "model.onnx", "r+b") as f:
            f.seek(100)
            f.write(b"garbage")
    (staging / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    staging.rename(folder)  # appears whole
    return folder


def folder_chaos(
    models: Path, variants: dict[str, list[Path]], until: float, log: list[str], rng: random.Random
) -> None:
    """Swap versions and drop malformed folders (removed a few seconds later), until `until`."""
    n, current = 0, dict.fromkeys(MODELS, 0)
    while time.monotonic() < until - 5:
        time.sleep(rng.uniform(3, 10))
        if rng.random() < 0.5:
            model = rng.choice(MODELS)
            current[model] = 1 - current[model]
            swap(models / model, variants[model][current[model]])
            log.append(f"swap {model} to variant {current[model]}")
        else:
            n += 1
            folder = malformed(models, n, rng)
            log.append(f"drop {folder.name}")
            time.sleep(rng.uniform(2, 6))
            shutil.rmtree(folder)


@dataclass
class Readiness:
    wrong_ready: float = 0.0  # longest stretch of 200 with a process stopped (or killed, until the first 503)
    wrong_not_ready: float = 0.0  # longest stretch of 503 with nothing stopped and no kill within KILL_GRACE_S
    samples: Counter[int] = field(default_factory=Counter)
    slowest_s: float = 0.0
    detected: dict[int, float] = field(default_factory=dict)  # serving pid stopped -> seconds until the first 503
    undetected: dict[int, float] = field(default_factory=dict)  # serving pid stopped, continued before any 503


def watch_readiness(base: str, server: int, until: float, faults: Faults, out: Readiness) -> None:
    """Read /readyz every 0.1 s and measure the longest stretches it was wrong, either way."""
    since: dict[str, float | None] = {"ready": None, "not ready": None}
    last_503 = -1e9
    watched: dict[int, tuple[float, bool]] = {}  # serving processes stopped and not yet reported by /readyz
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
                status = response.status
        except urllib.error.HTTPError as err:
            status = err.code
        except OSError:
            status = 0
        now = time.monotonic()
        out.samples[status] += 1
        out.slowest_s = max(out.slowest_s, now - started)
        if status == 503:
            last_503 = now
        alive = set(inference_pids(server))  # a stopped process the server killed as hung is gone from here
        serving_now = len(alive) == len(MODELS)  # no swap in flight
        with faults.lock:
            stops = {pid: stop for pid, stop in faults.stopped.items() if stop[1] and pid in alive and serving_now}
            stopped, stopped_serving = bool(faults.stopped), bool(stops)
            last_kill, killed_serving = faults.kills[-1] if faults.kills else (-1e9, False)
            for pid, (when, _) in stops.items():
                if status == 503 and pid not in out.detected:
                    out.detected[pid] = now - when
            for pid, (when, _) in list(watched.items()):
                if pid not in stops and pid not in out.detected:
                    out.undetected[pid] = now - when
            watched.clear()
            watched.update({pid: stop for pid, stop in stops.items() if pid not in out.detected})
        recent_kill = now - last_kill < KILL_GRACE_S
        wrong = {  # the model serving a route stopped or killed, yet 200; or nothing wrong, yet 503
            "ready": status == 200 and (stopped_serving or (recent_kill and killed_serving and last_503 < last_kill)),
            "not ready": status == 503 and not stopped and not recent_kill,
        }
        for kind, is_wrong in wrong.items():
            began = since[kind]
            if is_wrong and began is None:
                since[kind] = started
            elif not is_wrong and began is not None:
                if kind == "ready":
                    out.wrong_ready = max(out.wrong_ready, now - began)
                else:
                    out.wrong_not_ready = max(out.wrong_not_ready, now - began)
                since[kind] = None
        time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))


def usage(pid: int) -> tuple[float, int]:
    """(RSS in MB, open descriptors) of one process."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return (int(match.group(1)) / 1024 if match else 0.0), len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("server never became ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--think-ms", type=float, default=20.0, help="each client waits up to this between requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown report here too")
    parser.add_argument("--probe-port", type=int, default=None, help=argparse.SUPPRESS)  # run as the prober
    args = parser.parse_args()
    if args.probe_port is not None:
        print(json.dumps(probe(args.probe_port, 60 * args.minutes)))
        return 0
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="tagger-chaos-"))
    models, versions = work / "models", work / "versions"
    variants: dict[str, list[Path]] = {}
    for model in MODELS:
        shutil.copytree(ROOT / "exports" / model, models / model)
        variants[model] = [ROOT / "exports" / model, versions / model]
        with_vocab(ROOT / "exports" / model, versions / model, indent=1)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TAGGER_MODEL_POLL_S": "1", "TAGGER_DEFAULT_MODEL": "en-upos"}
    log_path = work / "server.log"
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--models", str(models), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(base, server)
        start_rss, start_fds = usage(server.pid)
        began = time.monotonic()
        until = began + 60 * args.minutes
        tally, faults, readiness = Tally(), Faults(), Readiness()
        folder_log: list[str] = []
        threads = [
            threading.Thread(target=client, args=(port, args.seed * 1000 + i, until, tally, args.think_ms / 1000))
            for i in range(args.clients)
        ]
        threads += [
            threading.Thread(target=processes_chaos, args=(server.pid, until, faults, random.Random(rng.random()))),
            threading.Thread(
                target=folder_chaos, args=(models, variants, until, folder_log, random.Random(rng.random()))
            ),
            threading.Thread(target=watch_readiness, args=(base, server.pid, until, faults, readiness)),
        ]
        prober = subprocess.Popen(
            [sys.executable, __file__, "--probe-port", str(port), "--minutes", str(args.minutes)],
            stdout=subprocess.PIPE,
        )
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        probed: list[float] = json.loads(prober.communicate(timeout=120)[0] or b"[]")
        for pid in inference_pids(server.pid):  # none left stopped
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        time.sleep(5)  # the last swap's old version drained and stopped
        end_rss, end_fds = usage(server.pid)
        elapsed = time.monotonic() - began
        server_errors = server_log_errors(log_path)
        inside = server_seconds(log_path)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
    report = markdown(args, elapsed, tally, faults, folder_log, readiness, (start_rss, start_fds, end_rss, end_fds))
    report += latency_table(tally.seconds, inside)
    report += (
        f"\nA request refused at once (422, by validation) from a client in a process of its own, every 0.2 s on "
        f"a new connection: {len(probed)} answers, ms p50 / p99 / max {spread(probed)} end to end, "
        f"{spread(inside.get('422', []))} inside the server.\n"
    )
    report += f"\nServer exit code after SIGTERM: {code}. Traceback lines in its log: {server_errors}.\n"
    print(report)
    if args.out is not None:
        args.out.write_text(report, encoding="utf-8")
    if tally.lost or server_errors:  # keep the server's log to read what went wrong
        kept = Path(tempfile.gettempdir()) / f"tagger-chaos-server-{int(time.time())}.log"
        shutil.copyfile(log_path, kept)
        print(f"the server's log: {kept}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if not tally.lost else 1


def server_log_errors(path: Path) -> int:
    return path.read_text(encoding="utf-8", errors="replace").count("Traceback")


ACCESS = re.compile(r" (\d{3}) \d+ sentences \d+ tokens ([\d.]+) ms id=")  # service.observability.logs.access


def server_seconds(path: Path) -> dict[str, list[float]]:
    """Each answer's time inside the server (its access line: from the middleware to the response), by status."""
    out: dict[str, list[float]] = {}
    for status, ms in ACCESS.findall(path.read_text(encoding="utf-8", errors="replace")):
        out.setdefault(status, []).append(float(ms) / 1000)
    return out


def spread_s(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 2]:.1f} / {ordered[-1]:.1f}" if ordered else "-"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p50, p99 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{1000 * p50:.0f} / {1000 * p99:.0f} / {1000 * ordered[-1]:.0f}"


def latency_table(client: dict[str, list[float]], server: dict[str, list[float]]) -> str:
    """Time to an answer by status: as the clients saw it, and inside the server (its access log)."""
    lines = [
        "",
        "| status | answers | client-side ms p50 / p99 / max | inside the server ms p50 / p99 / max |",
        "|---|---|---|---|",
    ]
    for status in sorted(client, key=lambda key: (key[:3], len(key), key)):
        lines.append(
            f"| {status} | {len(client[status]):,} | {spread(client[status])} | {spread(server.get(status, []))} |"
        )
    return "\n".join(lines) + "\n"


def markdown(
    args: argparse.Namespace,
    elapsed: float,
    tally: Tally,
    faults: Faults,
    folder_log: list[str],
    readiness: Readiness,
    usage_figures: tuple[float, int, float, int],
) -> str:
    start_rss, start_fds, end_rss, end_fds = usage_figures
    total = tally.served + sum(tally.refused.values()) + sum(tally.lost.values())
    stops = sum(1 for line in faults.log if line.startswith("stop"))
    hung = sum(1 for line in faults.log if "replaced as hung" in line)
    kills = sum(1 for line in faults.log if line.startswith("kill"))
    swaps = sum(1 for line in folder_log if line.startswith("swap"))
    drops = sum(1 for line in folder_log if line.startswith("drop"))
    lines = [
        f"# Chaos: {elapsed / 60:.1f} min, {args.clients} clients on en-ner and en-upos (/v1 and /v2)",
        "",
        f"`python benchmarks/chaos.py --minutes {args.minutes:g} --clients {args.clients} --seed {args.seed}` "
        f"(think time up to {args.think_ms:g} ms), on {os.cpu_count()} cores.",
        "",
        f"Chaos: {stops} SIGSTOPs of an inference process (1-40 s, then SIGCONT; {hung} held past the stall "
        f"timeout and replaced as hung), {kills} SIGKILLs, {swaps} version swaps through the polled models "
        f"folder, {drops} malformed folders dropped in and removed.",
        "",
        "| requests | served (200) | refused, documented (503 + Retry-After, 504) | lost (errors, other statuses) |",
        "|---|---|---|---|",
        f"| {total:,} | {tally.served:,} | {sum(tally.refused.values()):,} | {sum(tally.lost.values()):,} |",
        "",
        "Refusals: " + (", ".join(f"{k}: {v:,}" for k, v in tally.refused.most_common()) or "none") + ".",
        "",
        "Lost: " + (", ".join(f"{k}: {v:,}" for k, v in tally.lost.most_common()) or "none") + ".",
        "",
        f"/readyz, read every 0.1 s ({sum(readiness.samples.values()):,} reads: "
        + ", ".join(f"{k}: {v:,}" for k, v in sorted(readiness.samples.items()))
        + f"; slowest {1000 * readiness.slowest_s:.0f} ms): longest wrong 200 (a serving process stopped, or killed "
        f"and not yet reported) {readiness.wrong_ready:.1f} s; longest wrong 503 (nothing stopped, no kill in the "
        f"last {KILL_GRACE_S:g} s) {readiness.wrong_not_ready:.1f} s. Serving processes stopped: "
        f"{len(readiness.detected) + len(readiness.undetected)}; /readyz said 503 after "
        f"{spread_s(list(readiness.detected.values()))} s (median / max) for {len(readiness.detected)}; "
        f"{len(readiness.undetected)} were continued before it did (stopped at most "
        f"{max(readiness.undetected.values(), default=0):.1f} s).",
        "",
        "| server process | RSS MB | open descriptors |",
        "|---|---|---|",
        f"| start (ready, no load yet) | {start_rss:.0f} | {start_fds} |",
        f"| end (load stopped, 5 s later) | {end_rss:.0f} | {end_fds} |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
