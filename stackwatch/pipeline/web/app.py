"""The service's HTTP endpoints on Faust's web server (``web.host:web.port``), and the middleware before them.

    register_web(app, runtime, settings, servers)

Pages, each module with one job:

- ``GET /healthz``, ``GET /readyz``: the probes (:mod:`~stackwatch.pipeline.web.health`);
- ``GET /metrics``, ``GET /api/status``: what this process is doing (:mod:`~stackwatch.pipeline.web.status`);
- ``/dashboard/``: the analysts' pages (:mod:`~stackwatch.pipeline.web.dashboard`);
- ``GET /api/sources``, ``POST /api/sources/{name}/backfill`` (:mod:`~stackwatch.pipeline.web.sources_api`);
- ``GET|POST /api/sql``: a sandboxed read-only query (:mod:`~stackwatch.pipeline.web.sql_api`);
- ``GET /api/alerts``, ``GET|POST /api/silences``, ``DELETE /api/silences/{id}``
  (:mod:`~stackwatch.pipeline.web.alerts_api`);
- ``POST /api/articles/{id}/labels``: an analyst's label correction (:mod:`~stackwatch.pipeline.web.labels_api`).

Before any view, outermost first: the security headers on every answer (:mod:`~stackwatch.pipeline.web.headers`,
a Content-Security-Policy that allows no script), the browser rules (:mod:`~stackwatch.pipeline.web.guard`: a
foreign ``Host`` 403, a cross-site state-changing or ``/api/sql`` request 403, a POST that is not
``application/json`` 415, an oversized body 413), then the token (:mod:`~stackwatch.pipeline.web.auth`) on every
path but the probes. A refused cross-site request never reaches the token comparison. No GET changes state.
"""

from __future__ import annotations

from collections.abc import Sequence

import faust
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from stackwatch.errors import StackwatchError
from stackwatch.pipeline.runtime import Runtime
from stackwatch.pipeline.web import alerts_api, dashboard, health, labels_api, sources_api, sql_api, status
from stackwatch.pipeline.web.auth import OPEN_PATHS, token_guard
from stackwatch.pipeline.web.context import WEB, Routes, WebContext
from stackwatch.pipeline.web.figures import LiveFigures, lag_groups
from stackwatch.pipeline.web.guard import BrowserRules, browser_guard
from stackwatch.pipeline.web.headers import security_headers
from stackwatch.pipeline.web.sqlfront import SqlFront
from stackwatch.settings import Settings
from stackwatch.settings.entities import gazetteer_from

__all__ = ["ROUTES", "register_web"]

ROUTES: Routes = (
    *health.ROUTES,
    *status.ROUTES,
    *dashboard.ROUTES,
    *sources_api.ROUTES,
    *sql_api.ROUTES,
    *alerts_api.ROUTES,
    *labels_api.ROUTES,
)
"""Every page of the service, in the order the router tries them."""


def register_web(app: faust.App, runtime: Runtime, settings: Settings, servers: Sequence[str]) -> None:
    """Attach stackwatch's endpoints, the dashboard and the security middleware to the Faust app's web server.

    Raises ConfigError when a non-loopback bind has no token (see :class:`~stackwatch.settings.web.WebSettings`).
    """
    token = settings.web.token()
    server = app.web
    if not isinstance(server, AiohttpWeb):
        raise StackwatchError(f"web: expected Faust's aiohttp driver, got {type(server).__name__}")
    rules = BrowserRules.for_web(settings.web, open_paths=OPEN_PATHS)
    server.web_app.middlewares.extend([security_headers, browser_guard(rules), token_guard(token, OPEN_PATHS)])
    figures = LiveFigures(runtime, tuple(servers), lag_groups(settings.kafka), settings.storage.snapshot_file())
    server.web_app[WEB] = WebContext(runtime, tuple(servers), figures, SqlFront(settings))
    dynamics = tuple(settings.taxonomy().names)
    composites = tuple(composite.name for composite in settings.indicators.composites)
    entities = tuple(entity.name for entity in gazetteer_from(settings.entities).entities)
    server.web_app[dashboard.DASHBOARD] = dashboard.Dashboard(runtime, dynamics, composites, entities)
    for path, view in ROUTES:
        app.page(path)(view)
