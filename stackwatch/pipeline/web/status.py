"""What this process is doing, for operators: ``GET /metrics`` (Prometheus exposition,
:mod:`stackwatch.pipeline.metrics`) and ``GET /api/status`` (a compact summary for ``stackwatch status``)."""

from __future__ import annotations

import time

from faust.web import Request, Response, View

from stackwatch.pipeline import metrics
from stackwatch.pipeline.web.context import Routes, WebContext, context_of
from stackwatch.pipeline.web.requests import json_answer
from stackwatch.storage import status as store_status

__all__ = ["ROUTES", "Metrics", "Status", "status_summary"]


async def status_summary(context: WebContext) -> dict[str, object]:
    """``{"roles", "uptime", "lag", "sources", "store"}``; ``sources`` and ``store`` are null when this process
    does not run ingest or hold the store, and ``store`` is ``{"error": ...}`` when the store cannot answer."""
    runtime = context.runtime
    live = await context.figures.gather()
    body: dict[str, object] = {
        "roles": sorted(runtime.roles),
        "uptime": round(time.monotonic() - context.started, 1),
        "lag": live.lag,
        "sources": None,
        "store": None,
    }
    if runtime.ingest is not None:
        body["sources"] = [vars(state) for state in runtime.ingest.scheduler.states.values()]
    if runtime.sink is not None and runtime.sink.store_thread is not None:
        thread = runtime.sink.store_thread
        try:
            summary = await thread.call(store_status.store_summary, thread.store.connection)
            body["store"] = {
                **summary,
                "rows_written": runtime.sink.rows_written,
                "alerts": dict(live.alerts),
                "deliveries": dict(live.deliveries),
                "snapshot_age": live.snapshot_age,
            }
        except Exception as error:  # the summary says the store failed instead of failing itself
            body["store"] = {"error": str(error)}
    return body


class Metrics(View):
    """``GET /metrics``: every metric of the registry, the live figures among them."""

    async def get(self, request: Request) -> Response:
        body = metrics.render(await context_of(request).figures.gather())
        return self.bytes(body, headers={"Content-Type": metrics.CONTENT_TYPE})


class Status(View):
    """``GET /api/status``: :func:`status_summary`."""

    async def get(self, request: Request) -> Response:
        return json_answer(await status_summary(context_of(request)))


ROUTES: Routes = (("/metrics", Metrics), ("/api/status", Status))
