"""A real ``stackwatch sink`` serving the HTTP API, for tests of what the API accepts and refuses."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from stackwatch.pipeline.kafka.broker import free_port
from tests.helpers.service import Service, pipeline_config

__all__ = ["ApiService", "api_service"]


class ApiService:
    """A running sink role (it holds the store and serves every API endpoint) at ``base``."""

    def __init__(self, service: Service, config: Path) -> None:
        self.service = service
        self.config = config
        self.port = service.web_port
        self.base = f"http://127.0.0.1:{self.port}"

    def silences(self) -> list[dict[str, Any]]:
        """Every silence the store holds, expired ones included (asked as the CLI asks)."""
        response = httpx.get(f"{self.base}/api/silences?all=1", timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found


@contextmanager
def api_service(directory: Path, broker: str, *, startup: float = 120.0, **web: Any) -> Iterator[ApiService]:
    """``stackwatch sink`` on a free port of 127.0.0.1 (``web`` extends its ``web:`` section); stopped after.

    Fails when it does not answer ``GET /api/silences`` within ``startup`` seconds, or when it exits with an
    error or a traceback in its log.
    """
    port = free_port()
    name = f"t{uuid.uuid4().hex[:10]}"
    config = pipeline_config(directory, [broker], name, web={"host": "127.0.0.1", "port": port, **web})
    service = Service(config, command="sink", web_port=port)
    running = ApiService(service, config)
    try:
        deadline = time.monotonic() + startup
        while True:
            try:
                if httpx.get(f"{running.base}/api/silences", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert service.process.poll() is None, service.output[-4000:]
            assert time.monotonic() < deadline, f"the sink did not answer within {startup}s\n{service.output[-4000:]}"
            time.sleep(0.3)
        yield running
    finally:
        code = service.stop()
    assert code == 0, service.output[-4000:]
    assert "Traceback" not in service.output, service.output[-4000:]
