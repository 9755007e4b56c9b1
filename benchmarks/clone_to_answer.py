"""From `git clone` to the first answer, by the README's "Two commands" on this machine.

    python benchmarks/clone_to_answer.py [--repo .] [--python python3] [--out benchmarks/results]

Clones the repository's committed HEAD into a temporary folder and runs the README's commands there:
`python3 -m venv .venv && .venv/bin/pip install -e .` with pip's cache off (every package downloaded, as on a
fresh machine), then `.venv/bin/tagger serve` (on a free port) and the README's curl request, repeated until it
answers 200. Times each step; writes clone-to-answer.json and .md to --out. The clone is a local one: the
time a network takes to carry the repository is not in it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUEST = {"texts": ["I don't like green eggs."], "scores": True}  # the README's curl request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answered(url: str) -> bool:
    request = urllib.request.Request(url, json.dumps(REQUEST).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--python", default="python3", help="the interpreter the README's first command calls")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    steps: dict[str, float] = {}
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    with tempfile.TemporaryDirectory(prefix="tagger-clone-") as tmp:
        checkout = Path(tmp) / "tagger"
        started = time.perf_counter()

        def step(name: str, *command: str) -> None:
            begun = time.perf_counter()
            where = checkout if checkout.exists() else Path(tmp)
            subprocess.run(command, cwd=where, env=env, check=True, capture_output=True)
            steps[name] = time.perf_counter() - begun

        step("git clone", "git", "clone", "--quiet", str(args.repo), str(checkout))
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout
        step("python3 -m venv .venv", args.python, "-m", "venv", ".venv")
        step("pip install -e .", ".venv/bin/pip", "install", "--quiet", "-e", ".")
        port = free_port()
        begun = time.perf_counter()
        server = subprocess.Popen(
            [".venv/bin/tagger", "serve", "--port", str(port)],
            cwd=checkout,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/v1/tag"
            while not answered(url):
                if server.poll() is not None or time.perf_counter() - begun > 300:
                    raise SystemExit("tagger serve exited or did not answer within 300 s")
                time.sleep(0.1)
            steps["tagger serve to the first answer"] = time.perf_counter() - begun
        finally:
            server.terminate()
            server.wait(30)
        total = time.perf_counter() - started
    report = {"commit": commit.strip(), "python": args.python, "steps_s": steps, "total_s": total}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "clone-to-answer.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        f"From `git clone` (local) to the first answer, commit {commit.strip()[:12]} (`benchmarks/clone_to_answer.py`)",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.1f} |" for name, seconds in steps.items()],
        f"| all | {total:.1f} |",
    ]
    markdown = "\n".join(lines) + "\n"
    (args.out / "clone-to-answer.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
