"""The sources of the ingest role: ``GET /api/sources`` (each source's state) and
``POST /api/sources/{name}/backfill`` (202 with the source's state; 404 for an unknown source or a process that
does not run ingest)."""

from __future__ import annotations

from faust.web import Request, Response, View

from stackwatch.pipeline.web.context import Routes, context_of
from stackwatch.pipeline.web.requests import json_answer

__all__ = ["ROUTES", "Backfill", "Sources"]

NO_INGEST = "this process does not run the ingest role"


class Sources(View):
    """``GET /api/sources``: a list of source states."""

    async def get(self, request: Request) -> Response:
        ingest = context_of(request).runtime.ingest
        if ingest is None:
            return json_answer({"error": NO_INGEST}, 404)
        return json_answer([vars(state) for state in ingest.scheduler.states.values()])


class Backfill(View):
    """``POST /api/sources/{name}/backfill``: ask the scheduler to backfill one source."""

    async def post(self, request: Request, name: str) -> Response:
        ingest = context_of(request).runtime.ingest
        if ingest is None:
            return json_answer({"error": NO_INGEST}, 404)
        try:
            ingest.scheduler.backfill(name)
        except KeyError:
            known = ", ".join(sorted(ingest.scheduler.states)) or "none"
            return json_answer({"error": f"unknown source {name!r} (enabled: {known})"}, 404)
        return json_answer(vars(ingest.scheduler.states[name]), 202)


ROUTES: Routes = (
    ("/api/sources", Sources),
    ("/api/sources/{name}/backfill", Backfill),
)
