"""The app's state: settings, metrics and the served models, with the lookups every route shares.

One object, built once by `service.app.create_app` and read by /v1, /v2, the fast path and the server; the
models' dict is changed only by the repository (loads, unloads, swaps). Nothing outside reads a private part.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from service.errors import ApiError
from service.models.repository import Repository
from service.models.served import Served
from service.models.shadows import Shadows
from service.observability.metrics import Metrics
from service.settings import Settings


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    models: dict[str, Served]  # changed only by `repository` (loads, unloads, swaps)
    repository: Repository
    control_digest: bytes = b""  # sha256 of TAGGER_CONTROL_TOKEN: /v2/repository is mounted when set
    ready: bool = False
    draining: bool = False
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    shadows: Shadows | None = None  # candidate versions beside the serving ones (service.models.shadows)

    def served(self, name: str) -> Served:
        """The model serving under `name` now, else a 404 naming the ones served."""
        served = self.models.get(name)
        if served is None:
            raise ApiError(
                404, "unknown_model", f"model {name!r} is not served; served: {sorted(self.models)}", "model"
            )
        return served

    def not_ready(self) -> dict[str, Any] | None:
        """Why the server is not ready (the body of /readyz's 503), or None when it is (also /v2/health/ready)."""
        if self.draining:
            return {"status": "draining"}
        if not self.ready:
            return {"status": "warming up"}
        down = sorted(name for name, served in self.models.items() if not served.batcher.available)
        if down:
            return {"status": "restarting", "models": down}
        return None

    def model_ready(self, served: Served) -> bool:
        """Whether one model takes requests now (/v2/models/{model}/ready)."""
        return self.ready and not self.draining and served.batcher.available


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.tagger
    return state


async def get_state(request: Request) -> AppState:
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]
