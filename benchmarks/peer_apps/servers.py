"""A peer app as a running server: started with its knobs, ready, and stopped with every process it started.

Frameworks start processes of their own (LitServe's workers, BentoML's
workers, Ray's GCS, raylet, agents and actors), and not all of them go away
with the first: `Tree` remembers each by pid and start time while the server
runs and SIGKILLs whatever is left 30 s after the stop signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from load import ROOT, descendants, free_port, wait_ready

from peer_apps.frameworks import Peer

APPS = ROOT / "benchmarks" / "peer_apps"


class Tree:
    """A server process and every process it starts, each remembered by pid and start time (pids are reused)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, signum: signal.Signals) -> None:
        self.process, self.port, self.signum = process, port, signum
        self.seen = {(process.pid, started(process.pid))}

    def look(self) -> None:
        self.seen |= {(pid, started(pid)) for pid in descendants(self.process.pid)}

    def alive(self) -> list[int]:
        return [pid for pid, start in self.seen if start is not None and started(pid) == start]

    def stop(self) -> None:
        """Signal the server, give it 30 s to stop its own processes, then SIGKILL whatever of its tree is left."""
        self.look()
        if self.process.poll() is None:
            self.process.send_signal(self.signum)
        deadline = time.monotonic() + 30
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        left = self.alive()
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        if left:
            print(f"  killed {len(left)} process(es) left after the server's shutdown: {sorted(left)}")
        self.process.wait(10)


def started(pid: int) -> int | None:
    """A live process's start time in clock ticks since boot; None once it has exited (or is a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


@contextmanager
def running_peer(peer: Peer, python: Path, knobs: dict[str, Any], model: Path, log: Path) -> Iterator[Tree]:
    """The peer app on 127.0.0.1 with these knobs, ready; its whole process tree stopped on leaving."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(APPS)]),
        "PEER_MODEL": str(model),
        "PEER_KNOBS": json.dumps(knobs),
        "PEER_INTRA_THREADS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",  # no phoning home
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # a single-machine Ray: its node, and so its servers, on loopback
        "RAY_TMPDIR": str(log.parent / "ray-tmp"),
        "RAY_worker_niceness": "0",  # as every other server's processes; Ray's 15 yields the CPU to anything else
        "BENTOML_DO_NOT_TRACK": "True",
        "BENTOML_HOME": str(log.parent / "bentoml-home"),
        **{var: ("1" if knobs[k] else "0") for k, var in peer.env.items() if k in knobs},
    }
    command = [str(python), *(a.replace("{port}", str(port)) for a in peer.app)]
    with log.open("a") as out:  # appended: a tuning log holds every run, each under its knobs
        out.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(command)} {json.dumps(knobs)}\n")
        out.flush()
        process = subprocess.Popen(command, env=env, cwd=APPS, stdout=out, stderr=subprocess.STDOUT)
    tree = Tree(process, port, peer.stop)
    try:
        wait_ready(process, f"http://127.0.0.1:{port}{peer.ready}", seconds=180)
        tree.look()
        yield tree
    finally:
        tree.stop()
