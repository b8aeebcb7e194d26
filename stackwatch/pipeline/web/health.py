"""The probes: ``GET /healthz`` (the process is alive) and ``GET /readyz`` (200 when every role of this process is
ready, else 503 with the reasons). Neither needs the token nor checks ``Host``: an orchestrator asks them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from faust.web import Request, Response, View

from stackwatch.pipeline.roles.sink import SinkService
from stackwatch.pipeline.runtime import Runtime
from stackwatch.pipeline.web.context import Routes, context_of
from stackwatch.pipeline.web.requests import json_answer
from stackwatch.storage import status as store_status

__all__ = ["ROUTES", "Health", "Ready", "broker_reachable", "readiness", "store_writable"]

CONNECT_TIMEOUT = 2.0
STORE_TIMEOUT = 5.0


async def broker_reachable(servers: Sequence[str]) -> str | None:
    """None when one of ``servers`` (``host:port``) accepts a TCP connection, else the reason."""
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError, TimeoutError):
            continue
        writer.close()
        return None
    return f"broker: none of {', '.join(servers)} accepts connections"


async def store_writable(sink: SinkService | None) -> str | None:
    """None when the sink's DuckDB file is writable and its thread answers (or there is no open store)."""
    if sink is None or sink.store_thread is None:
        return None
    thread = sink.store_thread
    if thread.store.read_only:
        return "sink: DuckDB file opened read-only"
    if not os.access(thread.store.path, os.W_OK):
        return f"sink: DuckDB file {thread.store.path} is not writable"
    try:
        await asyncio.wait_for(thread.call(store_status.ping, thread.store.connection), STORE_TIMEOUT)
    except TimeoutError:
        return "sink: the store thread did not answer within 5s (a long write?)"
    except Exception as error:  # any DuckDB failure here means not ready, with its reason
        return f"sink: DuckDB does not answer: {error}"
    return None


def role_reasons(runtime: Runtime) -> list[str]:
    """Why a role of this process is not ready yet, from what it says of itself."""
    reasons = []
    if runtime.sink is not None:
        if runtime.sink.store_thread is None:
            reasons.append("sink: DuckDB store not open yet")
        if runtime.sink.last_error:
            reasons.append(f"sink: {runtime.sink.last_error}")
    if runtime.classifier is not None:
        if not runtime.classifier.done():
            reasons.append("worker: classifier still loading")
        elif runtime.classifier.exception() is not None:
            reasons.append(f"worker: classifier failed to load: {runtime.classifier.exception()}")
    if runtime.ingest is not None and not runtime.ingest.connected:
        reasons.append("ingest: not connected to the broker yet")
    return reasons


async def readiness(runtime: Runtime, servers: Sequence[str]) -> list[str]:
    """Why this process is not ready (empty when it is): its roles, then the broker and the store."""
    reasons = role_reasons(runtime)
    for check in await asyncio.gather(broker_reachable(servers), store_writable(runtime.sink)):
        if check is not None:
            reasons.append(check)
    return reasons


class Health(View):
    """``GET /healthz``: ``{"status": "ok", "roles": [...]}``."""

    async def get(self, request: Request) -> Response:
        return json_answer({"status": "ok", "roles": sorted(context_of(request).runtime.roles)})


class Ready(View):
    """``GET /readyz``: ``{"ready": bool, "reasons": [...]}``, 503 when not ready."""

    async def get(self, request: Request) -> Response:
        context = context_of(request)
        reasons = await readiness(context.runtime, context.servers)
        return json_answer({"ready": not reasons, "reasons": reasons}, 503 if reasons else 200)


ROUTES: Routes = (("/healthz", Health), ("/readyz", Ready))
