"""The web page at /: type a text, tag it, see the entities or the tags on the text itself.

A page for people judging the tagger, who would rather look than read JSON
(as spaCy's displaCy shows its parses). It is three static files in
`service/api/static/`, served by the service itself (no CDN, no build step, so it works
on a host with no internet access), and a script that calls the public API
exactly as any client would: GET v1/models, then POST v1/models/{model}/tag.
So it needs no route of its own beyond the files, and an API key, when the
service wants one, is typed by the user and sent like any other client's.

Every URL in the page is relative, so it also works behind a path prefix
(`root_path`), reached at the prefix with its trailing slash.

The page is sent with a strict Content-Security-Policy: scripts, styles and
requests only from this origin, nothing inline, no frames. Its files under
/ui/ carry the same headers (`HeaderedFiles`), so /ui/index.html, the same
page at another address, is no way around the policy, and no file is sniffed.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response
from starlette.types import Scope

ASSETS = Path(__file__).parent / "static"  # index.html, ui.css, ui.js, favicon.svg
ASSETS_URL = "/ui"
# The page's own script and styles, API calls to this origin, images only from here (the favicon, data: for none).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_DOCS_LINK = re.compile(r"<!--docs-->.*?<!--/docs-->", re.DOTALL)


class HeaderedFiles(StaticFiles):
    """StaticFiles whose every answer (a file, a 304) carries `headers`: StaticFiles alone sets none."""

    def __init__(self, *, directory: Path, headers: dict[str, str]) -> None:
        super().__init__(directory=directory)
        self.headers = headers

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self.headers)
        return response


def page(docs: bool) -> str:
    """index.html, without its link to /docs when the service does not serve /docs."""
    html = (ASSETS / "index.html").read_text(encoding="utf-8")
    return html if docs else _DOCS_LINK.sub("", html)


def mount_ui(app: FastAPI, docs: bool) -> None:
    """Serve the page at / and its files under /ui/, none of them in the OpenAPI document."""
    html = page(docs)
    app.mount(ASSETS_URL, HeaderedFiles(directory=ASSETS, headers=HEADERS), name="ui-assets")

    @app.get("/", include_in_schema=False)
    async def ui() -> HTMLResponse:
        return HTMLResponse(html, headers=HEADERS)
