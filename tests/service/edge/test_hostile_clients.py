"""Hostile and heavy clients against a real `tagger serve`: huge or endless headers, slow bodies, too many
connections, bodies past the limit, text no answer could encode. Each is refused alone; others are served."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app import create_app
from service.settings import Settings
from tests.helpers import free_port, metrics, post, serving, start_server, until, wait_ready

pytestmark = [pytest.mark.trains, pytest.mark.server]
SENTENCE = {"sentences": [["The", "cat", "sat", "."]]}


@pytest.fixture(scope="module")
def hostile(models_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A server with short read timeouts and a small connection cap, so the tests see them act."""
    port = free_port()
    process = start_server(
        models_dir,
        port,
        TAGGER_HEADER_TIMEOUT_S="1",
        TAGGER_BODY_TIMEOUT_S="1",
        TAGGER_MAX_CONNECTIONS="400",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield base, process
    finally:
        process.kill()
        process.wait(10)


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def answer(sock: socket.socket, timeout: float = 5.0) -> tuple[int, dict]:
    """Read one whole response off a raw socket (the server closes after a refusal): (status, JSON body)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body) if body else {}


def test_a_100_mb_header_is_refused_at_once_without_buffering_it(hostile: tuple) -> None:
    base, process = hostile
    before = rss_mb(process.pid)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port_of(base))) as sock:
        sock.sendall(b"POST /v1/tag HTTP/1.1\r\nhost: x\r\nx-filler: ")
        sent = 0
        try:
            while sent < 100 << 20:
                sock.sendall(b"a" * (1 << 20))
                sent += 1 << 20
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed mid-header: what should happen
        status, body = answer(sock)
    elapsed = time.monotonic() - started
    assert status == 431 and body["error"]["reason"] == "headers_too_large"
    assert "TAGGER_MAX_HEADER_BYTES" in body["error"]["message"]
    assert sent < 100 << 20 and elapsed < 1.0, f"sent {sent} bytes over {elapsed:.2f} s before the refusal"
    assert rss_mb(process.pid) - before < 20
    assert post(f"{base}/v1/tag", SENTENCE)[0] == 200


@pytest.mark.parametrize(
    ("request_head", "status", "reason"),
    [
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /livez HTTP/1.1\r\n" + b"".join(b"x-h%d: 1\r\n" % i for i in range(101)) + b"\r\n",
            431,
            "too_many_headers",
        ),
        (b"GET /livez HTTP/1.1\r\nx-a: " + b"b" * 17000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"BREW /livez HTCPCP/1.0\r\n\r\n", 400, "invalid_http"),
    ],
    ids=["long request line", "101 headers", "one 17 kB header", "not HTTP"],
)
def test_a_request_head_past_a_limit_is_refused_with_its_reason(
    hostile: tuple, request_head: bytes, status: int, reason: str
) -> None:
    base, _ = hostile
    with socket.create_connection(("127.0.0.1", port_of(base))) as sock:
        sock.sendall(request_head)
        got, body = answer(sock)
    assert got == status and body["error"]["reason"] == reason
    assert f'tagger_rejections_total{{reason="{reason}"}}' in metrics(base)


def test_slow_connections_are_closed_by_the_read_timeouts_while_others_are_served(hostile: tuple) -> None:
    base, _ = hostile
    port = port_of(base)
    slow = []
    for i in range(300):
        sock = socket.create_connection(("127.0.0.1", port))
        # half never finish their headers; half send headers and never the body they promise
        if i % 2:
            sock.sendall(b"POST /v1/tag HTTP/1.1\r\nhost: x\r\n")
        else:
            sock.sendall(
                b"POST /v1/tag HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 99\r\n\r\n{"
            )
        slow.append(sock)
    opened = time.monotonic()
    latencies = []
    while time.monotonic() - opened < 2.5:
        started = time.perf_counter()
        assert post(f"{base}/v1/tag", SENTENCE)[0] == 200
        latencies.append(time.perf_counter() - started)
    statuses = []
    for sock in slow:
        status, body = answer(sock, timeout=5)
        statuses.append((status, body["error"]["reason"]))
        sock.close()
    closed_after = time.monotonic() - opened
    assert set(statuses) == {(408, "header_timeout"), (408, "body_timeout")}
    assert closed_after < 4.0  # 1 s timeouts, and the 2.5 s of normal requests beside them
    p99 = statistics.quantiles(latencies, n=100)[98]
    assert p99 < 0.1, f"normal requests beside 300 slow connections: p99 {1000 * p99:.0f} ms"


def test_connections_past_the_cap_are_answered_503_and_closed(hostile: tuple) -> None:
    base, _ = hostile
    port = port_of(base)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(400)]
    try:
        time.sleep(0.2)  # the server accepts them all
        with socket.create_connection(("127.0.0.1", port)) as extra:
            status, body = answer(extra)
        assert status == 503 and body["error"]["reason"] == "too_many_connections"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert post(f"{base}/v1/tag", SENTENCE)[0] == 200


def test_a_body_past_the_limit_is_a_readable_413_for_a_client_that_writes_it_all_first(hostile: tuple) -> None:
    base, _ = hostile
    body = json.dumps({"sentences": [["word"] * 100] * 5000}).encode()  # about 4 MB
    body += b" " * (5_000_000 - len(body))
    for _ in range(5):
        request = urllib.request.Request(f"{base}/v1/tag", body, {"content-type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code == 413
        assert json.loads(caught.value.read())["error"]["reason"] == "body_too_large"


@pytest.mark.parametrize(
    "body",
    ['{"sentences": [["ok", "\\ud800"]]}', '{"texts": ["fine \\udfff text"]}', '{"texts": ["\\ud83d"]}'],
    ids=["token", "text", "high surrogate alone"],
)
def test_a_lone_surrogate_is_a_422_naming_the_field(hostile: tuple, body: str) -> None:
    base, _ = hostile
    request = urllib.request.Request(f"{base}/v1/tag", body.encode(), {"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    error = json.loads(caught.value.read())["error"]
    assert caught.value.code == 422 and error["reason"] == "invalid_unicode"
    assert error["field"] in ("sentences[0][1]", "texts[0]") and "surrogate" in error["message"]
    pair = '{"texts": ["an emoji \\ud83d\\ude00 is fine"]}'  # a surrogate pair is one character
    request = urllib.request.Request(f"{base}/v1/tag", pair.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_a_request_answered_before_its_slow_body_still_has_its_connection_timed_out(hostile: tuple) -> None:
    base, _ = hostile
    with socket.create_connection(("127.0.0.1", port_of(base))) as sock:
        # refused at once (415), its 10-byte body then dripped in, under the 1 s body timeout
        sock.sendall(b"POST /v1/tag HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 10\r\n\r\n")
        for _ in range(2):
            time.sleep(0.4)
            sock.sendall(b"xxxxx")
        sock.settimeout(5)
        started, data = time.monotonic(), b""
        while chunk := sock.recv(65536):  # the 415, then the server's close once the next head is overdue
            data += chunk
        assert data.startswith(b"HTTP/1.1 415") and time.monotonic() - started < 3.0


def chunked_post(base: str, body: bytes, chunk: int = 65536) -> tuple[int, dict]:
    """POST `body` to /v1/tag with `Transfer-Encoding: chunked` and no Content-Length (the size unknown until the
    end, as a streaming client sends it); (status, JSON answer)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    pieces = (body[i : i + chunk] for i in range(0, len(body), chunk))
    connection.request("POST", "/v1/tag", pieces, {"content-type": "application/json"}, encode_chunked=True)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer


def test_a_chunked_body_is_held_to_the_limit_while_it_is_read(hostile: tuple) -> None:
    base, _ = hostile
    small = json.dumps(SENTENCE).encode()
    assert chunked_post(base, small, chunk=7)[0] == 200  # a body in many pieces is read whole
    # 2.5 MB past the 2 MB limit, valid JSON the model would tag: only the size while reading can refuse it
    large = small[:-1] + b" " * 2_500_000 + b"}"
    status, answer = chunked_post(base, large)
    assert status == 413 and answer["error"]["reason"] == "body_too_large", answer
    assert "TAGGER_MAX_BODY_BYTES" in answer["error"]["message"]
    assert post(f"{base}/v1/tag", SENTENCE)[0] == 200


def script_hashes(html: str) -> set[str]:
    """The CSP source of each inline script of a page: 'sha256-<base64>'."""
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    return {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts}


@pytest.mark.parametrize("path", ["/", "/ui/index.html", "/docs", "/ui/ui.js", "/docs-assets/swagger-ui-bundle.js"])
def test_every_page_and_file_is_sent_with_the_security_headers(hostile: tuple, path: str) -> None:
    base, _ = hostile
    with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
        headers, text = response.headers, response.read().decode()
    assert headers["x-content-type-options"] == "nosniff"
    if path.endswith(".js"):
        return
    policy = headers["content-security-policy"]
    directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))
    assert directives["frame-ancestors"] == "'none'" and directives["default-src"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    # every inline script the page has is allowed by its hash, and nothing else inline
    assert set(directives["script-src"].split()) == {"'self'", *script_hashes(text)}


def test_an_unexpected_error_answers_500_with_the_request_id_in_its_header_and_body(models_dir: Path) -> None:
    app = create_app(Settings(models=models_dir, default_model="tiny", warmup=False))

    @app.get("/v1/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    with serving(app) as (base, _):
        until(lambda: listening(base))
        for given in ("client-chosen-id-42", None):
            request = urllib.request.Request(f"{base}/v1/broken", headers={"x-request-id": given} if given else {})
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=10)
            error = json.loads(caught.value.read())["error"]
            assert caught.value.code == 500 and error["reason"] == "internal_error"
            assert caught.value.headers["x-request-id"] == error["request_id"]
            assert given is None or error["request_id"] == given


def listening(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/livez", timeout=2):
            return True
    except OSError:
        return False
