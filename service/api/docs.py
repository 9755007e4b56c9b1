"""/docs from files on this host: Swagger UI as the `fastapi-offline` package ships it.

FastAPI's own page loads its JavaScript and CSS from a CDN, so on a host
without internet access (or in the container) it was a blank white page. The
same page here points at copies served by the service itself. There is no
/redoc: ReDoc's page fetches its logo from the vendor's CDN whatever it is
given (the browser test caught it), and Swagger UI documents the same API.

The page carries a Content-Security-Policy as the web page does: everything
from this origin, no frames; its one inline script (Swagger UI's start-up)
is allowed by its SHA-256 alone, and Swagger UI's icons are data: images.
Its files carry `nosniff`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse

from service.api.webpage import HeaderedFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css, favicon.png
ASSETS_URL = "/docs-assets"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff"}


def page_headers(html: str) -> dict[str, str]:
    """The page's security headers, its inline scripts allowed by their hashes (they name the root path)."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    csp = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def mount_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve /docs (Swagger UI) with every asset from this service."""
    app.mount(ASSETS_URL, HeaderedFiles(directory=ASSETS, headers=ASSET_HEADERS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )
        page.headers.update(page_headers(bytes(page.body).decode()))
        return page
