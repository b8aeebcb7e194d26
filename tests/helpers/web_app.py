"""The web app of a sink runtime, served on a free port of 127.0.0.1 without starting the runtime.

    async with served_web(settings, store=path) as base:     # "http://127.0.0.1:PORT"
        answer = await client.get(f"{base}/dashboard/")

With ``store``, the pages read that DuckDB file (read-only) through the sink's store thread, as in the service;
without, the sink has no store yet (its pages answer 503).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web as aioweb
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from stackwatch.pipeline.app import build_runtime
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import Settings
from stackwatch.storage.store import Store

__all__ = ["served_app", "served_web"]


@asynccontextmanager
async def served_app(app: aioweb.Application) -> AsyncIterator[str]:
    """``app`` served on a free port of 127.0.0.1 until the block ends: its base address."""
    runner = aioweb.AppRunner(app)
    await runner.setup()
    port = free_port()
    await aioweb.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def served_web(settings: Settings, store: Path | None = None) -> AsyncIterator[str]:
    runtime = build_runtime(settings, ["sink"], ["127.0.0.1:9"], web_port=free_port())
    assert runtime.sink is not None
    thread = StoreThread(Store.open(store, read_only=True)) if store is not None else None
    if thread is not None:
        runtime.sink.store_thread = thread
    server = runtime.app.web
    assert isinstance(server, AiohttpWeb)
    server.init_server()  # Faust's own pages and ours
    try:
        async with served_app(server.web_app) as base:
            yield base
    finally:
        if thread is not None:
            await thread.close()
