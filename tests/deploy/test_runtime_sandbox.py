"""The image's runtime as the container runs it, without an engine: uid 10001, read-only root, tmpfs /tmp.

The Dockerfile promises a non-root user, a root filesystem that may be
read-only, a HEALTHCHECK on /readyz and a drain on SIGTERM. A mount namespace
and `setpriv` give a plain process the same conditions: / remounted read-only,
a tmpfs on /tmp, the Dockerfile's USER with no capabilities, and only the
Dockerfile's ENV. The image is laid out as the Dockerfile lays it out (its
COPYs keep file modes, as Docker's do; its chmod; a venv made by `pip install
--no-compile .`) under a folder standing in for the image's root, and the
Dockerfile's own CMD and HEALTHCHECK run there. Not shown: the base image's
files, Docker's COPY itself, seccomp and cgroup limits.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import free_port, post, wait_ready

pytestmark = [
    pytest.mark.install,
    pytest.mark.server,
    pytest.mark.skipif(sys.platform != "linux", reason="needs Linux mount namespaces"),
]
IMAGE_PATHS = ("/opt/tagger", "/srv/tagger")  # where the Dockerfile puts the venv and the models


def stages(dockerfile: str) -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions as (INSTRUCTION, arguments), continuations joined, comments dropped.

    `FROM python:3.11-slim AS runtime` + `USER 10001:10001` -> {"runtime": [("USER", "10001:10001")]}
    """
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in "\n".join(lines).replace("\\\n", " ").splitlines():
        word, _, rest = line.strip().partition(" ")
        if word.upper() == "FROM":
            current = found.setdefault(rest.split()[-1], [])
        elif word:
            current.append((word.upper(), rest.strip()))
    return found


def args(stage: list[tuple[str, str]], instruction: str) -> list[str]:
    return [rest for word, rest in stage if word == instruction]


@dataclass(frozen=True)
class Image:
    root: Path  # stands in for the image's /
    env: dict[str, str]  # the runtime stage's ENV, its paths under `root`
    uid: str
    gid: str
    workdir: Path
    cmd: list[str]
    healthcheck: list[str]

    def inside(self, path: str) -> str:
        return inside(self.root, path)


def inside(root: Path, path: str) -> str:
    """An image path under the stand-in root: /srv/tagger/exports -> ROOT/srv/tagger/exports; others unchanged."""
    return str(root) + path if path.startswith(IMAGE_PATHS) else path


def sandboxed(image: Image, command: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """`command` as the container runs it: read-only /, tmpfs /tmp, the image's user, nothing but `env`."""
    script = (
        "mount --make-rprivate / && mount -o remount,bind,ro / && mount -t tmpfs -o size=64m tmpfs /tmp"
        ' && cd "$1" && uid=$2 gid=$3 && shift 3 && exec setpriv --reuid="$uid" --regid="$gid" --clear-groups'
        ' --no-new-privs --inh-caps=-all --bounding-set=-all env -i "$@"'
    )
    assignments = [f"{key}={value}" for key, value in env.items()]
    sandbox = ["unshare", "--mount", "sh", "-c", script, "sh", str(image.workdir), image.uid, image.gid]
    return [*sandbox, *assignments, *command]


def interpreter(uid: str, gid: str) -> str:
    """A Python >= 3.11 the image's user can run (this venv's may sit in root's home)."""
    for candidate in (str(Path(sys.base_prefix) / "bin" / "python3"), "/usr/local/bin/python3", "/usr/bin/python3"):
        # as that user: the version, and the file itself reachable (not merely some python answering)
        check = "import os, sys; assert sys.version_info >= (3, 11) and os.access(sys.argv[1], os.X_OK)"
        probe = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", candidate, "-c", check, candidate]
        if Path(candidate).exists() and subprocess.run(probe, capture_output=True, timeout=30).returncode == 0:
            return candidate
    pytest.skip(f"no Python >= 3.11 that uid {uid} may run")


def build(root: Path) -> Image:
    """Lay the image out under `root` the way the Dockerfile's two stages do."""
    found = stages((ROOT / "Dockerfile").read_text())
    builder, runtime = found["builder"], found["runtime"]
    uid, _, gid = args(runtime, "USER")[0].partition(":")
    python = interpreter(uid, gid or uid)
    source = root / args(builder, "WORKDIR")[0].lstrip("/")
    for copy in args(builder, "COPY"):  # with their modes, like Docker's COPY
        *sources, target = shlex.split(copy)
        destination = Path(str(root) + target) if target.startswith("/") else source / target
        for name in sources:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, destination, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                destination.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, destination)
    (install,) = [run for run in args(builder, "RUN") if "--require-hashes" in run]  # what the next lines mirror
    assert "-r requirements/serve.lock" in install and "pip install --no-compile --no-deps ." in install
    venv = root / "opt" / "tagger"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--no-compile"]
    subprocess.run([*pip, "--require-hashes", "-r", "requirements/serve.lock"], check=True, timeout=900, cwd=source)
    subprocess.run([*pip, "--no-deps", "."], check=True, timeout=900, cwd=source)
    (chmod,) = [shlex.split(run) for run in args(builder, "RUN") if run.startswith("chmod")]
    subprocess.run([*chmod[:-1], inside(root, chmod[-1])], check=True, timeout=60)
    assert any(copy.startswith("--from=builder /srv/tagger/exports") for copy in args(runtime, "COPY"))

    env: dict[str, str] = {}
    for assignments in args(runtime, "ENV"):
        env |= dict(item.split("=", 1) for item in shlex.split(assignments))
    health = args(runtime, "HEALTHCHECK")[0]
    return Image(
        root=root,
        env={key: inside(root, value).replace("$PATH", "/usr/bin:/bin") for key, value in env.items()},
        uid=uid,
        gid=gid or uid,
        workdir=Path(inside(root, args(runtime, "WORKDIR")[0])),
        cmd=json.loads(args(runtime, "CMD")[0]),
        healthcheck=json.loads(health[health.index(" CMD ") + len(" CMD ") :]),
    )


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("unshare", "setpriv", "mount")):
        pytest.skip("needs root and util-linux (unshare, setpriv, mount) to build the sandbox")
    # Outside /tmp: inside the sandbox a tmpfs covers /tmp, as in the container.
    root = Path(tempfile.mkdtemp(prefix="tagger-image-", dir="/var/tmp"))
    try:
        root.chmod(0o755)
        yield build(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Container:
    base: str
    env: dict[str, str]
    process: subprocess.Popen[str]


@pytest.fixture(scope="module")
def container(image: Image) -> Iterator[Container]:
    """The image's CMD in the sandbox; the image binds 0.0.0.0, the test keeps to loopback."""
    assert image.env["TAGGER_HOST"] == "0.0.0.0"
    port = free_port()
    env = image.env | {"TAGGER_HOST": "127.0.0.1", "TAGGER_PORT": str(port)}
    command = sandboxed(image, image.cmd, env)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, seconds=120)
        yield Container(f"http://127.0.0.1:{port}", env, process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def test_the_image_serves_both_models_as_its_user_on_a_read_only_root(image: Image, container: Container) -> None:
    status = Path(f"/proc/{container.process.pid}/status").read_text()
    assert f"Uid:\t{image.uid}\t{image.uid}" in status  # unshare, sh and setpriv exec'd into the server
    status_code, body = post(f"{container.base}/v1/tag", {"texts": ["The service runs without torch."]})
    assert status_code == 200
    assert json.loads(body)["results"][0]["tags"] == ["DET", "NOUN", "VERB", "ADP", "NOUN", "PUNCT"]
    status_code, body = post(f"{container.base}/v1/models/en-ner/tag", {"texts": ["Angela Merkel visited Paris."]})
    assert status_code == 200
    assert [s["label"] for s in json.loads(body)["results"][0]["spans"]] == ["PER", "LOC"]
    # the sandbox is what it claims: nothing outside /tmp is writable
    touch = subprocess.run(sandboxed(image, ["touch", image.inside("/srv/tagger/x")], container.env), timeout=30)
    assert touch.returncode != 0


def test_the_healthcheck_passes_on_a_ready_replica_and_fails_without_one(image: Image, container: Container) -> None:
    ready = subprocess.run(sandboxed(image, image.healthcheck, container.env), capture_output=True, timeout=30)
    assert ready.returncode == 0, ready.stderr
    nobody = container.env | {"TAGGER_PORT": str(free_port())}
    refused = subprocess.run(sandboxed(image, image.healthcheck, nobody), capture_output=True, timeout=30)
    assert refused.returncode != 0


def test_sigterm_drains_and_exits_zero(container: Container) -> None:
    # last in this file: it stops the module's server
    container.process.send_signal(signal.SIGTERM)
    assert container.process.wait(30) == 0
