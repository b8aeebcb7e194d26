"""The dashboard's pages on Faust's web server.

/dashboard/                      overview (``?days=…&width=…``, one of :data:`~.ranges.RANGES`)
/dashboard/dynamic/{name}        a dynamic: chart, entities, alerts, stories, articles (any case)
/dashboard/entity/{name}         an entity: chart, dynamics, stories, articles (any case, percent-encoded)
/dashboard/article/{id}          an article: scores, entities, story, the alerts it fed (``?day=YYYY-MM-DD``, the
                                 UTC day it was published on, as every link to it gives: the store reads that day)
/dashboard/search                articles by text, dynamic, entity, source and dates (``?q=&dynamic=…``)
/dashboard/static/style.css      the one stylesheet (the pages load nothing else)

Each view reads its :class:`Dashboard` from the aiohttp application (:data:`DASHBOARD`), builds a :class:`Page`
and renders it. Every page shows a range: the one the request names, else the default for the store's volume
(:func:`~.ranges.default_range`); every link to another page carries it. A page that cannot be built (no store in
this process, a store that cannot answer, an unknown name) is the error page with its status: 404, 500 or 503;
a search with a field that cannot be read is the search page with its messages and 400.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from importlib import resources
from typing import Concatenate, Final, ParamSpec, TypeVar, cast
from urllib.parse import urlencode

from aiohttp import web as aioweb
from duckdb import DuckDBPyConnection
from faust.web import Request, Response, View
from jinja2 import Environment

from stackwatch.errors import StoreError
from stackwatch.pipeline.runtime import Runtime
from stackwatch.pipeline.web.context import Routes
from stackwatch.pipeline.web.dashboard import charts
from stackwatch.pipeline.web.dashboard.ranges import default_range, parse_range
from stackwatch.pipeline.web.dashboard.search import PAGE_SIZE, SearchForm, check_form, match_dynamic
from stackwatch.pipeline.web.dashboard.templating import build_environment, nav_links, range_query
from stackwatch.storage import dashboard as queries
from stackwatch.storage.dashboard import Range

__all__ = [
    "DASHBOARD",
    "ROUTES",
    "Dashboard",
    "Page",
    "PageError",
    "SourceHealth",
    "published_day",
    "source_health",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

HTML = "text/html; charset=utf-8"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

NO_STORE = "this process does not hold the store (the dashboard runs with the sink role)"


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
    """A template and its context. ``rng`` (the range in force, None on an error page) and ``defaulted`` (it was
    chosen from the store's volume) come from the page; ``nav``, ``rq``, ``form``, ``entities`` and ``now`` are
    added when it is rendered."""

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
    entities: tuple[str, ...] = ()
    """The gazetteer's entity names (built-in and configured)."""
    environment: Environment = field(default_factory=build_environment)
    stylesheet: bytes = field(
        default_factory=lambda: (
            resources.files("stackwatch.pipeline.web.dashboard").joinpath("static/style.css").read_bytes()
        )
    )

    def render(self, page: Page, query: Mapping[str, str]) -> Response:
        """``page``, asked for with ``query``, as an HTML response."""
        context: dict[str, object] = {"rng": None, "defaulted": False, "form": SearchForm(), **page.context}
        rng = cast(Range | None, context["rng"])
        body = self.environment.get_template(page.template).render(
            nav=nav_links(query, rng),
            rq=range_query(rng) if rng is not None else "",
            entities=self.entities,
            dynamics=self.dynamics,
            now=datetime.now(UTC),
            **context,
        )
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


async def page_range(dashboard: Dashboard, query: Mapping[str, str]) -> dict[str, object]:
    """``rng``, the range the request names or else the default for the store's recent volume, and
    ``defaulted``, whether it is the default."""
    named = parse_range(query)
    if named is not None:
        return {"rng": named, "defaulted": False}
    return {"rng": default_range(await dashboard.read(queries.recent_volume)), "defaulted": True}


async def resolve_entity(dashboard: Dashboard, name: str) -> str | None:
    """The entity ``name`` means, in any case: the gazetteer's spelling, else the store's; None when neither has
    it."""
    if name in dashboard.entities:
        return name
    folded = name.casefold()
    known = next((entity for entity in dashboard.entities if entity.casefold() == folded), None)
    if known is not None:
        return known
    stored = await dashboard.read(queries.entity_names, name)
    return stored[0] if stored else None


def _search_href(rng: Range, **fields: str) -> str:
    """The search page for ``fields`` from the start of ``rng`` on, keeping the range."""
    query = {**fields, "since": f"{rng.since:%Y-%m-%d}", "days": str(rng.days), "width": rng.width}
    return "/dashboard/search?" + urlencode(query)


async def overview_page(dashboard: Dashboard, query: Mapping[str, str]) -> Page:
    """Every dynamic's volume, the composites, the entity heat map and the sources' health."""
    shown = await page_range(dashboard, query)
    rng = cast(Range, shown["rng"])
    result = await dashboard.read(queries.overview, rng, dashboard.dynamics, dashboard.composites)
    heat = charts.heat_map(
        result.entities,
        dashboard.dynamics,
        result.heat,
        link="/dashboard/entity/",
        dynamic_link="/dashboard/dynamic/",
        query=range_query(rng)[1:],
    )
    context = {
        **shown,
        "view": result,
        "charts": {series.name: charts.volume_chart(series, rng) for series in result.dynamics},
        "composite_charts": {series.name: charts.line_chart(series, rng) for series in result.composites},
        "heat": heat,
        "sources": source_health(dashboard.runtime, result.sources),
    }
    return Page("overview.html", context)


async def dynamic_page(dashboard: Dashboard, name: str, query: Mapping[str, str]) -> Page:
    """One dynamic, named in any case; 404 when the taxonomy has none of that name."""
    dynamic = match_dynamic(name, dashboard.dynamics)
    if dynamic is None:
        raise PageError(404, f"unknown dynamic {name[:80]!r} (known: {', '.join(dashboard.dynamics)})")
    shown = await page_range(dashboard, query)
    rng = cast(Range, shown["rng"])
    result = await dashboard.read(queries.dynamic_detail, dynamic, rng)
    context = {
        **shown,
        "view": result,
        "chart": charts.volume_chart(result.series, rng),
        "limits": {"articles": queries.ARTICLES, "stories": queries.STORIES, "alerts": queries.ALERTS},
        "search_href": _search_href(rng, dynamic=dynamic),
    }
    return Page("dynamic.html", context)


async def entity_page(dashboard: Dashboard, name: str, query: Mapping[str, str]) -> Page:
    """One entity, named in any case; 404 when neither the gazetteer nor the store has it."""
    entity = await resolve_entity(dashboard, name)
    if entity is None:
        raise PageError(404, f"unknown entity {name[:80]!r}: neither the gazetteer nor the store has it")
    shown = await page_range(dashboard, query)
    rng = cast(Range, shown["rng"])
    result = await dashboard.read(queries.entity_detail, entity, rng)
    context = {
        **shown,
        "view": result,
        "chart": charts.volume_chart(result.series, rng),
        "limits": {"articles": queries.ARTICLES, "stories": queries.STORIES},
        "search_href": _search_href(rng, entity=entity),
    }
    return Page("entity.html", context)


def published_day(query: Mapping[str, str]) -> date | None:
    """The day an article link names (``?day=YYYY-MM-DD``), or None: a link without one, or with one that cannot
    be read, still finds the article (by reading the whole table)."""
    text = query.get("day", "")
    try:
        return date.fromisoformat(text) if _DAY.fullmatch(text) else None
    except ValueError:
        return None


async def article_page(dashboard: Dashboard, article_id: str, query: Mapping[str, str]) -> Page:
    """One article, looked for on the day its link names first; 404 when the store has none by that id."""
    result = await dashboard.read(queries.article_detail, article_id, published_day(query))
    if result is None:
        raise PageError(404, f"no article with id {article_id[:80]!r}")
    return Page("article.html", {**await page_range(dashboard, query), "view": result})


async def search_page(dashboard: Dashboard, query: Mapping[str, str]) -> Page:
    """Stored articles matching the form's filters, newest first, :data:`~.search.PAGE_SIZE` a page; the form
    again with a message per bad field and status 400 when a field cannot be read."""
    shown = await page_range(dashboard, query)
    form, filters, errors = check_form(query, dashboard.dynamics)
    if filters.entity is not None:
        entity = await resolve_entity(dashboard, filters.entity)
        if entity is None:
            errors.append(f"entity: unknown entity {filters.entity[:40]!r} (neither the gazetteer nor the store)")
        filters = replace(filters, entity=entity)
    context: dict[str, object] = {**shown, "form": form, "errors": errors, "result": None}
    if errors:
        return Page("search.html", context, 400)
    result = await dashboard.read(queries.search_articles, filters, PAGE_SIZE, (form.page - 1) * PAGE_SIZE)
    rng = cast(Range, shown["rng"])
    link = {**form.fields, "days": str(rng.days), "width": rng.width}
    first = (form.page - 1) * PAGE_SIZE
    further = result.more or first + PAGE_SIZE < result.total  # past the count's cap there are always more
    context.update(
        result=result,
        first=first + 1,
        last=first + len(result.articles),
        previous=f"?{urlencode({**link, 'page': form.page - 1})}" if form.page > 1 else "",
        next=f"?{urlencode({**link, 'page': form.page + 1})}" if further else "",
    )
    return Page("search.html", context)


async def serve(request: Request, build: Callable[[Dashboard], Awaitable[Page]]) -> Response:
    """The page ``build`` makes with the request's dashboard, or the error page when it raises PageError."""
    dashboard = cast(aioweb.Request, request).app[DASHBOARD]  # Faust's aiohttp driver hands aiohttp's request
    try:
        page = await build(dashboard)
    except PageError as error:
        page = Page("error.html", {"status": error.status, "message": error.message}, error.status)
    return dashboard.render(page, request.query)


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
        return await serve(request, lambda dashboard: article_page(dashboard, article_id, request.query))


class OverviewWithoutSlash(View):
    """``/dashboard`` leads to the overview at ``/dashboard/``, whose relative links resolve against it."""

    async def get(self, request: Request) -> Response:
        query = urlencode(list(request.query.items()))
        location = f"/dashboard/?{query}" if query else "/dashboard/"
        return cast(Response, aioweb.Response(status=308, headers={"Location": location}))


class Search(View):
    async def get(self, request: Request) -> Response:
        return await serve(request, lambda dashboard: search_page(dashboard, request.query))


class Stylesheet(View):
    async def get(self, request: Request) -> Response:
        stylesheet = cast(aioweb.Request, request).app[DASHBOARD].stylesheet
        return self.bytes(stylesheet, headers={"Content-Type": "text/css; charset=utf-8"})


ROUTES: Routes = (
    ("/dashboard/", Overview),
    ("/dashboard", OverviewWithoutSlash),
    ("/dashboard/dynamic/{name}", Dynamic),
    ("/dashboard/entity/{name}", Entity),
    ("/dashboard/article/{article_id}", Article),
    ("/dashboard/search", Search),
    ("/dashboard/static/style.css", Stylesheet),
)
