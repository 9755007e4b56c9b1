"""/readyz: 503 until every model is warmed up, 200 after, 503 again once a drain starts."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

import service.app
from service.app import create_app
from service.models.served import Served
from service.server import DrainingServer
from service.settings import Settings

pytestmark = [pytest.mark.trains, pytest.mark.server]


def test_ready_only_after_warm_up_and_not_while_draining(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    warmed: list[str] = []

    async def slow_warm_up(model: Served) -> None:
        while not release.is_set():
            await asyncio.sleep(0.01)
        warmed.append(model.name)

    monkeypatch.setattr(service.app, "warm_up", slow_warm_up)
    app = create_app(Settings(models=models_dir, default_model="tiny"))
    with TestClient(app) as client:
        assert client.get("/livez").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json() == {"status": "warming up"}
        release.set()
        for _ in range(200):
            if client.get("/readyz").status_code == 200:
                break
            threading.Event().wait(0.01)
        assert client.get("/readyz").status_code == 200 and warmed == ["tiny"]

        server = DrainingServer(uvicorn.Config(app), app.state.tagger)
        server.handle_exit(signal.SIGTERM, None)  # what uvicorn calls on SIGTERM
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json() == {"status": "draining"}
