"""The peer frameworks: their pins, apps, knobs, and the virtual environments they are installed into.

A peer's venv holds the framework at the pinned version plus numpy and
onnxruntime at the main venv's versions (the model path is ours, so its
libraries are too). Before anything is installed, a pip dry run lists what
would come: if that holds torch (or its CUDA siblings), nothing is installed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

TORCH = {"torch", "torchvision", "torchaudio", "triton"}  # never pulled in, whatever a peer depends on
SAME_AS_OURS = ("numpy", "onnxruntime")  # pinned to the main venv's versions


@dataclass(frozen=True)
class Peer:
    """A framework: how to install it, start the app, stop it, and which knobs to tune (in tuning order)."""

    name: str
    title: str
    packages: tuple[str, ...]
    app: tuple[str, ...]  # argv after the venv's python; "{port}" is replaced
    ready: str  # path answering 200 once the model is loaded
    grid: tuple[tuple[str, ...], ...]  # groups of knobs tuned together, in order
    values: dict[str, tuple[Any, ...]]  # first value of each = the starting point
    stop: signal.Signals = signal.SIGTERM
    env: dict[str, str] = field(default_factory=dict)  # knob -> environment variable ("1"/"0" for a bool)


SAME_AS_OURS = ("numpy", "onnxruntime")  # pinned to the main venv's versions
PEERS = {
    "ray": Peer(
        "ray",
        "Ray Serve",
        ("ray[serve]==2.60.0",),
        ("ray_app.py", "{port}"),
        "/readyz",
        (("replicas", "batch"), ("wait_ms",), ("throughput_optimized",)),
        {"replicas": (1, 2), "batch": (32, 16, 64), "wait_ms": (5, 1, 10), "throughput_optimized": (False, True)},
        env={"throughput_optimized": "RAY_SERVE_THROUGHPUT_OPTIMIZED"},
    ),
    "bentoml": Peer(
        "bentoml",
        "BentoML",
        ("bentoml==1.4.40", "uvloop", "httptools"),  # uvicorn's C loop and parser, as ours has (pinned to ours)
        ("-m", "bentoml", "serve", "bento_service:Tagger", "--host", "127.0.0.1", "--port", "{port}"),
        "/readyz",
        (("workers", "batch"), ("max_latency_ms",)),
        {"workers": (1, 2), "batch": (32, 16, 64), "max_latency_ms": (1000, 100, 60000)},
    ),
    "litserve": Peer(
        "litserve",
        "LitServe",
        ("litserve==0.2.19",),
        ("lit_app.py", "{port}"),
        "/health",
        (("workers", "batch"), ("wait_ms",), ("fast_queue",), ("api_servers",)),
        {
            "workers": (1, 2),
            "batch": (32, 16, 64),
            "wait_ms": (5, 1, 10),
            "fast_queue": (False, True),
            "api_servers": (None, 1, 2),
        },
        stop=signal.SIGINT,  # LitServe shuts down on KeyboardInterrupt; SIGTERM orphans its workers
    ),
}


def pinned(peer: Peer) -> list[str]:
    """The peer's requirements: bare names get the main venv's version (`uvloop` -> `uvloop==0.23.0`)."""
    return [p if "==" in p else f"{p}=={metadata.version(p)}" for p in (*peer.packages, *SAME_AS_OURS)]


def ensure_venv(venvs: Path, peer: Peer) -> Path:
    """The peer's virtual environment (made, or reused when it holds exactly these pins); its python."""
    venv, specs = venvs / peer.name, pinned(peer)
    python, stamp, log = venv / "bin" / "python", venv / "peers-requirements.txt", venvs / f"{peer.name}-pip.log"
    if stamp.is_file() and stamp.read_text().split() == specs:
        return python
    print(f"{peer.name}: installing {' '.join(specs)} into {venv} (pip log: {log})")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
    with log.open("w") as out:

        def pip(*args: str) -> None:
            subprocess.run([str(python), "-m", "pip", *args], stdout=out, stderr=out, check=True, timeout=1800)

        report = venv / "pip-dry-run.json"
        pip("install", "--dry-run", "--ignore-installed", "--report", str(report), *specs)
        names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
        if names & TORCH:
            raise SystemExit(f"{peer.name}: {' '.join(specs)} would install {sorted(names & TORCH)}; not installing")
        pip("install", *specs)
    stamp.write_text("\n".join(specs) + "\n")
    return python


VERSIONS = """
import importlib.metadata as m, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        pass
print(json.dumps(found))
"""


def versions(python: Path, framework: str | None = None) -> dict[str, str]:
    """The framework's version and its serving stack's (those installed) in the venv of `python`."""
    names = [*([framework] if framework else []), "numpy", "onnxruntime", "fastapi", "uvicorn", "pydantic"]
    run = subprocess.run([str(python), "-c", VERSIONS, *names], capture_output=True, check=True, timeout=60)
    found = json.loads(run.stdout)
    return {"framework": f"{framework} {found.pop(framework)}" if framework else "ours", **found}


def title(server: str) -> str:
    return "tagger (ours)" if server == "tagger" else PEERS[server].title


def parse_knobs(specs: list[str]) -> dict[str, dict[str, Any]]:
    """`ray:batch=32,wait_ms=5` -> {"ray": {"batch": 32, "wait_ms": 5}} (values read as JSON where they parse)."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        name, _, pairs = spec.partition(":")
        if name not in PEERS:
            raise SystemExit(f"--knobs {spec!r}: unknown peer {name!r}; peers: {sorted(PEERS)}")
        for pair in filter(None, pairs.split(",")):
            key, _, value = pair.partition("=")
            if key not in PEERS[name].values:
                raise SystemExit(f"--knobs {spec!r}: {name} has no knob {key!r}; knobs: {sorted(PEERS[name].values)}")
            try:
                out.setdefault(name, {})[key] = json.loads(value)
            except json.JSONDecodeError:
                out.setdefault(name, {})[key] = value
    return out
