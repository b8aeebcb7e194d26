"""The service's HTTP endpoints (served by Faust's web server on ``web.host:web.port``).

- ``GET /healthz``: the process is alive.
- ``GET /readyz``: 200 when every role of this process is ready, else 503 with the reasons.
- ``GET /api/sources``: each source's state.
- ``POST /api/sql`` with ``{"sql": "SELECT ..."}`` (or ``GET /api/sql?q=...``): a read-only query of the store.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import faust
from faust.web import Request, Response, View

from stackwatch.errors import QueryRefused, StoreError

if TYPE_CHECKING:
    from stackwatch.pipeline.app import Runtime

__all__ = ["MAX_SQL_BODY", "register_pages"]

MAX_SQL_BODY = 64 * 1024


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _json(view: View, body: Any, status: int = 200) -> Response:
    payload = json.dumps(body, default=_default, ensure_ascii=False).encode("utf-8")
    return view.bytes(payload, content_type="application/json", status=status)


def register_pages(app: faust.App, runtime: Runtime) -> None:
    """Attach stackwatch's endpoints to the Faust app's web server."""

    class Health(View):
        async def get(self, request: Request) -> Response:
            return _json(self, {"status": "ok", "roles": sorted(runtime.roles)})

    class Ready(View):
        async def get(self, request: Request) -> Response:
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
            status = 503 if reasons else 200
            return _json(self, {"ready": not reasons, "reasons": reasons}, status)

    class Sources(View):
        async def get(self, request: Request) -> Response:
            if runtime.ingest is None:
                return _json(self, {"error": "this process does not run the ingest role"}, 404)
            return _json(self, [vars(state) for state in runtime.ingest.scheduler.states.values()])

    class Sql(View):
        async def get(self, request: Request) -> Response:
            return await self._run(request.query.get("q", ""))

        async def post(self, request: Request) -> Response:
            raw = await request.content.read(MAX_SQL_BODY + 1)  # type: ignore[attr-defined]
            if len(raw) > MAX_SQL_BODY:
                return _json(self, {"error": f"request body larger than {MAX_SQL_BODY} bytes"}, 413)
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                return _json(self, {"error": f"request body is not JSON: {error}"}, 400)
            if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
                return _json(self, {"error": 'expected a JSON object {"sql": "SELECT ..."}'}, 400)
            return await self._run(body["sql"])

        async def _run(self, sql: str) -> Response:
            if runtime.sink is None or runtime.sink.store_thread is None:
                return _json(self, {"error": "this process does not hold the store (run the sink role)"}, 503)
            if not sql.strip():
                return _json(self, {"error": "empty query"}, 400)
            thread = runtime.sink.store_thread
            try:
                result = await thread.call(thread.store.query, sql)
            except QueryRefused as error:
                return _json(self, {"error": f"refused: {error}"}, 400)
            except StoreError as error:
                return _json(self, {"error": str(error)}, 400)
            return _json(self, {"columns": result.columns, "rows": [list(row) for row in result.rows]})

    app.page("/healthz")(Health)
    app.page("/readyz")(Ready)
    app.page("/api/sources")(Sources)
    app.page("/api/sql")(Sql)
