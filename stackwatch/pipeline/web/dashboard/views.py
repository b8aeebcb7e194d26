"""The dashboard's pages on Faust's web server.

/dashboard/                      overview (``?days=7|30|90&width=1h|1d``)
/dashboard/dynamic/{name}        a dynamic: chart, entities, alerts, stories, articles
/dashboard/entity/{name}         an entity: chart, dynamics, stories, articles
/dashboard/article/{id}          an article: scores, entities, story, the alerts it fed
/dashboard/static/style.css      the one stylesheet (the pages load nothing else)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

import faust
from faust.web import Request, Response, View
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from stackwatch.errors import StoreError
from stackwatch.pipeline.runtime import Runtime
from stackwatch.pipeline.web.dashboard import charts
from stackwatch.settings import Settings
from stackwatch.storage import dashboard as queries
from stackwatch.storage.dashboard import Range

__all__ = ["RANGES", "SourceHealth", "build_environment", "parse_range", "register_dashboard"]

log = logging.getLogger(__name__)

RANGES: tuple[tuple[int, str], ...] = ((7, "1h"), (7, "1d"), (30, "1d"), (90, "1d"))
HTML = "text/html; charset=utf-8"


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


def parse_range(query: Any) -> Range:
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


def register_dashboard(app: faust.App, runtime: Runtime, settings: Settings) -> None:
    """Attach the dashboard's pages; ``settings`` gives the dynamics and composites to chart."""
    environment = build_environment()
    stylesheet = resources.files("stackwatch.pipeline.web.dashboard").joinpath("static/style.css").read_bytes()

    def page(handler: View, template: str, code: int = 200, /, **context: Any) -> Response:
        context.setdefault("rng", Range())
        body = environment.get_template(template).render(ranges=RANGES, now=datetime.now(UTC), **context)
        return handler.bytes(body.encode("utf-8"), status=code, headers={"Content-Type": HTML})

    def error(view: View, status: int, message: str) -> Response:
        return page(view, "error.html", status, status=status, message=message)

    async def read(view: View, function: Any, *args: Any) -> Any:
        """Run a query on the store thread; a Response when the store cannot answer."""
        sink = runtime.sink
        if sink is None or sink.store_thread is None:
            return error(view, 503, "this process does not hold the store (the dashboard runs with the sink role)")
        thread = sink.store_thread
        try:
            return await thread.call(function, thread.store.connection, *args)
        except StoreError as failure:
            return error(view, 503, f"the store cannot answer: {failure}")
        except Exception as failure:  # a DuckDB error on a page must be a page, not a dropped connection
            log.exception("dashboard: query failed")
            return error(view, 500, f"query failed: {type(failure).__name__}")

    def dynamics() -> list[str]:
        return list(settings.taxonomy().names)

    class Overview(View):
        async def get(self, request: Request) -> Response:
            rng = parse_range(request.query)
            composites = [composite.name for composite in settings.indicators.composites]
            result = await read(self, queries.overview, rng, dynamics(), composites)
            if isinstance(result, Response):
                return result
            return page(
                self,
                "overview.html",
                rng=rng,
                view=result,
                charts={series.name: charts.volume_chart(series, rng) for series in result.dynamics},
                composite_charts={series.name: charts.line_chart(series, rng) for series in result.composites},
                heat=charts.heat_map(result.entities, dynamics(), result.heat, link="/dashboard/entity/"),
                sources=source_health(runtime, result.sources),
            )

    class Dynamic(View):
        async def get(self, request: Request, name: str) -> Response:
            if name not in dynamics():
                return error(self, 404, f"unknown dynamic {name!r} (known: {', '.join(dynamics())})")
            rng = parse_range(request.query)
            result = await read(self, queries.dynamic_detail, name, rng)
            if isinstance(result, Response):
                return result
            return page(self, "dynamic.html", rng=rng, view=result, chart=charts.volume_chart(result.series, rng))

    class Entity(View):
        async def get(self, request: Request, name: str) -> Response:
            rng = parse_range(request.query)
            result = await read(self, queries.entity_detail, name, rng)
            if isinstance(result, Response):
                return result
            return page(self, "entity.html", rng=rng, view=result, chart=charts.volume_chart(result.series, rng))

    class Article(View):
        async def get(self, request: Request, article_id: str) -> Response:
            result = await read(self, queries.article_detail, article_id)
            if isinstance(result, Response):
                return result
            if result is None:
                return error(self, 404, f"no article with id {article_id!r}")
            return page(self, "article.html", view=result)

    class Stylesheet(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(stylesheet, headers={"Content-Type": "text/css; charset=utf-8"})

    app.page("/dashboard/")(Overview)
    app.page("/dashboard/dynamic/{name}")(Dynamic)
    app.page("/dashboard/entity/{name}")(Entity)
    app.page("/dashboard/article/{article_id}")(Article)
    app.page("/dashboard/static/style.css")(Stylesheet)
