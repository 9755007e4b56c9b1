"""/docs from files on this host: Swagger UI as the `fastapi-offline` package ships it.

FastAPI's own page loads its JavaScript and CSS from a CDN, so on a host
without internet access (or in the container) it was a blank white page. The
same page here points at copies served by the service itself. There is no
/redoc: ReDoc's page fetches its logo from the vendor's CDN whatever it is
given (the browser test caught it), and Swagger UI documents the same API.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css, favicon.png
ASSETS_URL = "/docs-assets"


def mount_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve /docs (Swagger UI) with every asset from this service."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )
