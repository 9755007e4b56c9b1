"""The README's Python client example runs as shown against a real server on the shipped models."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess

import pytest

from tests.conftest import ROOT
from tests.helpers import free_port, start_server, wait_ready

pytestmark = pytest.mark.server


def test_the_python_client_example_prints_what_the_readme_says() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"## A Python client.*?```python\n(.*?)```", readme, re.S)
    expected = [line[2:] for line in code.splitlines() if line.startswith("# [")]
    port = free_port()
    process: subprocess.Popen[str] = start_server(ROOT / "exports", port, TAGGER_DEFAULT_MODEL="en-upos")
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, seconds=120)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(code.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}"), {})
    finally:
        process.kill()
        process.wait(10)
    assert printed.getvalue().splitlines() == expected
