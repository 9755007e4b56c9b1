"""The container's runtime, without a container engine: what the Dockerfile installs, and nothing else.

The runtime stage of the Dockerfile holds a virtual environment made by
`pip install .` (the core dependencies, no extras) plus the shipped exports,
and runs `tagger serve`. This test builds the same environment from the
checkout, proves torch is absent from it, and serves and tags with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import free_port, get, post, wait_ready

pytestmark = [pytest.mark.install, pytest.mark.server]


def test_the_runtime_install_serves_the_shipped_models_without_torch(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-compile --require-hashes -r requirements/serve.lock" in dockerfile  # mirrored below
    assert "pip install --no-compile --no-deps ." in dockerfile
    venv = tmp_path / "runtime"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-compile"]
    lock = ROOT / "requirements" / "serve.lock"
    subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True, timeout=900, cwd=tmp_path)
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True, timeout=900, cwd=tmp_path)
    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True, cwd=tmp_path)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr

    port = free_port()
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "TAGGER_MODELS": str(ROOT / "exports"),  # the image copies exports/ and sets this
        "TAGGER_HOST": "127.0.0.1",  # the image binds 0.0.0.0; tests stay on loopback
        "TAGGER_PORT": str(port),
        "TAGGER_INTRA_THREADS": "1",
    }
    process = subprocess.Popen(
        [str(venv / "bin" / "tagger"), "serve"],
        env=env,
        cwd=tmp_path,  # not the checkout: imports must come from the installed venv
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, seconds=120)
        status, body = post(f"http://127.0.0.1:{port}/v1/tag", {"texts": ["The service runs without torch."]})
        assert status == 200
        (result,) = json.loads(body)["results"]
        assert result["tags"] == ["DET", "NOUN", "VERB", "ADP", "NOUN", "PUNCT"]
        status, body = post(
            f"http://127.0.0.1:{port}/v1/models/en-ner/tag", {"texts": ["Angela Merkel visited Paris."]}
        )
        assert status == 200
        assert [s["label"] for s in json.loads(body)["results"][0]["spans"]] == ["PER", "LOC"]
        for path, words in (("/", b"<html"), ("/ui/ui.js", b"fetch"), ("/ui/ui.css", b"{"), ("/docs", b"swagger")):
            status, body = get(f"http://127.0.0.1:{port}{path}")  # the page's and /docs' files were installed
            assert status == 200 and words in body.lower(), path
    finally:
        process.terminate()
        process.wait(30)
