"""``POST /api/sql`` with ``{"sql": "SELECT ..."}`` (or ``GET /api/sql?q=...``): a read-only query of the store,
sandboxed and limited (:mod:`stackwatch.pipeline.web.sqlfront`, docs/sql.md).

The answer is ``{"columns", "rows", "truncated"}``; 400 when the query is refused, fails or is stopped at a limit
(``limit`` names it), 429 with ``Retry-After`` when ``sql.max_concurrent`` are running, 503 when this process does
not hold the store or the store cannot answer.
"""

from __future__ import annotations

import logging

from faust.web import Request, Response, View

from stackwatch.errors import QueryBusy, QueryFailed, QueryRefused, QueryStopped, StoreError
from stackwatch.pipeline.runtime import Runtime
from stackwatch.pipeline.web.context import Routes, context_of, store_thread
from stackwatch.pipeline.web.requests import BadRequest, json_answer, json_body, refusal
from stackwatch.pipeline.web.sqlfront import SqlFront

__all__ = ["MAX_SQL_BODY", "ROUTES", "Sql", "answer_sql"]

log = logging.getLogger(__name__)

MAX_SQL_BODY = 64 * 1024


async def answer_sql(front: SqlFront, runtime: Runtime, sql: str) -> Response:
    """Run ``sql`` through ``front`` on the store this process holds; every outcome as its JSON answer."""
    try:
        thread = store_thread(runtime)
    except BadRequest as error:
        return refusal(error)
    if not sql.strip():
        return json_answer({"error": "empty query"}, 400)
    try:
        answer = await front.answer(thread, sql)
    except QueryRefused as error:
        return json_answer({"error": f"refused: {error}"}, 400)
    except QueryStopped as error:
        return json_answer({"error": str(error), "limit": error.limit}, 400)
    except QueryFailed as error:
        return json_answer({"error": str(error)}, 400)
    except QueryBusy as error:
        return json_answer({"error": str(error)}, 429, headers={"Retry-After": "1"})
    except StoreError as error:
        log.warning("web: sql: %s", error)
        return json_answer({"error": f"the store cannot answer: {error}"}, 503)
    return json_answer({"columns": answer.columns, "rows": answer.rows, "truncated": answer.truncated})


class Sql(View):
    """``GET /api/sql?q=...`` and ``POST /api/sql`` with ``{"sql": "..."}``."""

    async def get(self, request: Request) -> Response:
        context = context_of(request)
        return await answer_sql(context.sql, context.runtime, request.query.get("q", ""))

    async def post(self, request: Request) -> Response:
        try:
            body = await json_body(request, MAX_SQL_BODY)
        except BadRequest as error:
            return refusal(error)
        if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
            return json_answer({"error": 'expected a JSON object {"sql": "SELECT ..."}'}, 400)
        context = context_of(request)
        return await answer_sql(context.sql, context.runtime, body["sql"])


ROUTES: Routes = (("/api/sql", Sql),)
