"""The dashboard's pages on Faust's web server.

/dashboard/                      overview (``?days=7|30|90&width=1h|1d``)
/dashboard/dynamic/{name}        a dynamic: chart, entities, alerts, stories, articles
/dashboard/entity/{name}         an entity: chart, dynamics, stories, articles
/dashboard/article/{id}          an article: scores, entities, story, the alerts it fed
/dashboard/static/style.css      the one stylesheet (the pages load nothing else)

Each view reads its :class:`Dashboard` from the aiohttp application (:data:`DASHBOARD`), builds a :class:`Page`
and renders it. A page that cannot be built (no store in this process, a store that cannot answer, an unknown
name) is the error page with its status: 404, 500 or 503.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Concatenate, Final, ParamSpec, TypeVar, cast
from urllib.parse import quote, urlsplit

from aiohttp import web as aioweb
from duckdb import DuckDBPyConnection
from faust.web import Request, Response, View
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from stackwatch.errors import StoreError
from stackwatch.pipeline.runtime import Runtime
from stackwatch.pipeline.web.context import Routes
from stackwatch.pipeline.web.dashboard import charts
from stackwatch.storage import dashboard as queries
from stackwatch.storage.dashboard import Range

__all__ = [
    "DASHBOARD",
    "RANGES",
    "ROUTES",
    "Dashboard",
    "Page",
    "PageError",
    "SourceHealth",
    "build_environment",
    "parse_range",
    "source_health",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

RANGES: tuple[tuple[int, str], ...] = ((7, "1h"), (7, "1d"), (30, "1d"), (90, "1d"))
HTML = "text/html; charset=utf-8"
NO_STORE = "this process does not hold the store (the dashboard runs with the sink role)"


def _segment(value: object) -> str:
    """A value as one URL path segment (``/`` and everything else percent-encoded)."""
    return quote(str(value), safe="")


def _safe_url(value: object) -> str:
    """An article's link when it is http(s), else empty: no ``javascript:`` or ``data:`` hrefs."""
    text = str(value or "")
    return text if urlsplit(text).scheme in {"http", "https"} else ""


def build_environment() -> Environment:
    """Jinja2 with autoescape on for every template: article text is untrusted."""
    environment = Environment(
        loader=PackageLoader("stackwatch.pipeline.web.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["seg"] = _segment
    environment.filters["safe_url"] = _safe_url
    return environment


def parse_range(query: Mapping[str, str]) -> Range:
    """``?days=`` (7, 30 or 90) and ``?width=`` (1h or 1d) of a request; anything else falls back to 7d · 1h."""
    try:
        days = int(query.get("days", "7"))
    except ValueError:
        days = 7
    days = days if days in {7, 30, 90} else 7
    width = query.get("width", "1h" if days == 7 else "1d")
    width = width if width in {"1h", "1d"} else "1d"
    return Range(days, width)


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A source as the scheduler (when this process runs ingest) and the store see it."""

    name: str
    type: str
    last_success: str | None
    last_error: str | None
    failures: int
    healthy: bool
    articles: int
    per_day: float
    last_article: str | None


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def source_health(runtime: Runtime, stored: tuple[queries.SourceVolume, ...]) -> list[SourceHealth]:
    """Every source the scheduler runs or the store has articles of, by name."""
    volumes = {volume.name: volume for volume in stored}
    rows: dict[str, SourceHealth] = {}
    states = runtime.ingest.scheduler.states if runtime.ingest is not None else {}
    for name, state in states.items():
        volume = volumes.get(name)
        rows[name] = SourceHealth(
            name=name,
            type=state.type,
            last_success=_when(state.last_success),
            last_error=state.last_error,
            failures=state.failures,
            healthy=state.consecutive_failures == 0,
            articles=volume.articles if volume else 0,
            per_day=volume.per_day if volume else 0.0,
            last_article=_when(volume.last_article) if volume else None,
        )
    for name, volume in volumes.items():
        if name not in rows:
            rows[name] = SourceHealth(
                name, "", None, None, 0, True, volume.articles, volume.per_day, _when(volume.last_article)
            )
    return sorted(rows.values(), key=lambda row: row.name)


@dataclass(frozen=True, slots=True)
class Page:
    """A template and its context (``rng``, ``ranges`` and ``now`` are added when it is rendered)."""

    template: str
    context: Mapping[str, object] = field(default_factory=dict)
    status: int = 200


class PageError(Exception):
    """A page that cannot be built: its status and the message the error page shows."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What the dashboard's views read: the process's roles, what to chart, the templates and the stylesheet."""

    runtime: Runtime
    dynamics: tuple[str, ...]
    """The taxonomy's dynamics, in its order."""
    composites: tuple[str, ...]
    """The names of ``indicators.composites``."""
    environment: Environment = field(default_factory=build_environment)
    stylesheet: bytes = field(
        default_factory=lambda: (
            resources.files("stackwatch.pipeline.web.dashboard").joinpath("static/style.css").read_bytes()
        )
    )

    def render(self, page: Page) -> Response:
        """``page`` as an HTML response."""
        context = {"rng": Range(), **page.context}
        body = self.environment.get_template(page.template).render(ranges=RANGES, now=datetime.now(UTC), **context)
        answer = aioweb.Response(body=body.encode("utf-8"), status=page.status, headers={"Content-Type": HTML})
        return cast(Response, answer)  # Faust's aiohttp driver serves aiohttp's responses

    async def read(
        self,
        function: Callable[Concatenate[DuckDBPyConnection, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """``function(connection, *args)`` on the store thread; PageError (503, 500) when the store cannot answer."""
        sink = self.runtime.sink
        if sink is None or sink.store_thread is None:
            raise PageError(503, NO_STORE)
        thread = sink.store_thread
        try:
            return await thread.call(function, thread.store.connection, *args, **kwargs)
        except StoreError as failure:
            raise PageError(503, f"the store cannot answer: {failure}") from failure
        except Exception as failure:  # a DuckDB error on a page must be a page, not a dropped connection
            log.exception("dashboard: query failed")
            raise PageError(500, f"query failed: {type(failure).__name__}") from failure


DASHBOARD: Final = aioweb.AppKey("stackwatch.dashboard", Dashboard)


async def overview_page(dashboard: Dashboard, query: Mapping[str, str]) -> Page:
    """Every dynamic's volume, the composites, the entity heat map and the sources' health."""
    rng = parse_range(query)
    result = await dashboard.read(queries.overview, rng, dashboard.dynamics, dashboard.composites)
    context = {
        "rng": rng,
        "view": result,
        "charts": {series.name: charts.volume_chart(series, rng) for series in result.dynamics},
        "composite_charts": {series.name: charts.line_chart(series, rng) for series in result.composites},
        "heat": charts.heat_map(result.entities, dashboard.dynamics, result.heat, link="/dashboard/entity/"),
        "sources": source_health(dashboard.runtime, result.sources),
    }
    return Page("overview.html", context)


async def dynamic_page(dashboard: Dashboard, name: str, query: Mapping[str, str]) -> Page:
    """One dynamic; 404 when the taxonomy has none of that name."""
    if name not in dashboard.dynamics:
        raise PageError(404, f"unknown dynamic {name!r} (known: {', '.join(dashboard.dynamics)})")
    rng = parse_range(query)
    result = await dashboard.read(queries.dynamic_detail, name, rng)
    return Page("dynamic.html", {"rng": rng, "view": result, "chart": charts.volume_chart(result.series, rng)})


async def entity_page(dashboard: Dashboard, name: str, query: Mapping[str, str]) -> Page:
    """One entity."""
    rng = parse_range(query)
    result = await dashboard.read(queries.entity_detail, name, rng)
    return Page("entity.html", {"rng": rng, "view": result, "chart": charts.volume_chart(result.series, rng)})


async def article_page(dashboard: Dashboard, article_id: str) -> Page:
    """One article; 404 when the store has none by that id."""
    result = await dashboard.read(queries.article_detail, article_id)
    if result is None:
        raise PageError(404, f"no article with id {article_id!r}")
    return Page("article.html", {"view": result})


async def serve(request: Request, build: Callable[[Dashboard], Awaitable[Page]]) -> Response:
    """The page ``build`` makes with the request's dashboard, or the error page when it raises PageError."""
    dashboard = cast(aioweb.Request, request).app[DASHBOARD]  # Faust's aiohttp driver hands aiohttp's request
    try:
        page = await build(dashboard)
    except PageError as error:
        page = Page("error.html", {"status": error.status, "message": error.message}, error.status)
    return dashboard.render(page)


class Overview(View):
    async def get(self, request: Request) -> Response:
        return await serve(request, lambda dashboard: overview_page(dashboard, request.query))


class Dynamic(View):
    async def get(self, request: Request, name: str) -> Response:
        return await serve(request, lambda dashboard: dynamic_page(dashboard, name, request.query))


class Entity(View):
    async def get(self, request: Request, name: str) -> Response:
        return await serve(request, lambda dashboard: entity_page(dashboard, name, request.query))


class Article(View):
    async def get(self, request: Request, article_id: str) -> Response:
        return await serve(request, lambda dashboard: article_page(dashboard, article_id))


class Stylesheet(View):
    async def get(self, request: Request) -> Response:
        stylesheet = cast(aioweb.Request, request).app[DASHBOARD].stylesheet
        return self.bytes(stylesheet, headers={"Content-Type": "text/css; charset=utf-8"})


ROUTES: Routes = (
    ("/dashboard/", Overview),
    ("/dashboard/dynamic/{name}", Dynamic),
    ("/dashboard/entity/{name}", Entity),
    ("/dashboard/article/{article_id}", Article),
    ("/dashboard/static/style.css", Stylesheet),
)
