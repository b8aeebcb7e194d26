"""The service's HTTP endpoints (served by Faust's web server on ``web.host:web.port``).

- ``GET /healthz``: the process is alive.
- ``GET /readyz``: 200 when every role of this process is ready (broker reachable, DuckDB writable, model
  loaded), else 503 with the reasons.
- ``GET /metrics``: Prometheus exposition (:mod:`stackwatch.pipeline.metrics`).
- ``GET /api/sources``: each source's state.
- ``GET /api/status``: a compact summary for ``stackwatch status``.
- ``POST /api/sql`` with ``{"sql": "SELECT ..."}`` (or ``GET /api/sql?q=...``): a read-only query of the store,
  sandboxed and limited (:mod:`stackwatch.pipeline.web.sqlfront`, docs/sql.md): ``{"columns", "rows", "truncated"}``,
  400 when refused, failed or stopped at a limit (``limit`` names it), 429 when ``sql.max_concurrent`` are running.
- ``GET /api/alerts?limit=20``: recent alerts with their delivery status per webhook (``stackwatch alerts``).
- ``GET /api/silences`` (``?all=1`` with expired ones), ``POST /api/silences`` with ``{"matchers":
  ["alertname=capex-surge", "dynamic=~cap.*"], "duration": "2h", "comment": "...", "created_by": "..."}``
  (201 with the silence and its ``id``), ``DELETE /api/silences/{id}`` (expire it now; 404 when it is unknown
  or already over). They read and write through the sink's store thread, the one DuckDB writer, so
  ``stackwatch silence`` works while the service runs; a bad request is a 4xx whose ``error`` names the field.
- ``/dashboard/``: the analysts' pages (:mod:`stackwatch.pipeline.web.dashboard`).

Every response carries a Content-Security-Policy that allows no script at all. Before any view, the browser-facing
rules of :mod:`stackwatch.pipeline.web.guard` refuse a foreign ``Host`` (403), a cross-site state-changing or
``/api/sql`` request (403), a POST that is not ``application/json`` (415) and an oversized body (413). When
``web.token_env`` names a token, every path but ``/healthz`` and ``/readyz`` requires it (``Authorization:
Bearer``, or ``?token=`` once, which sets a cookie for the dashboard's links). No GET changes state.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import faust
from aiohttp import web as aioweb
from aiohttp.typedefs import Middleware
from faust.web import Request, Response, View
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from stackwatch.errors import (
    BrokerError,
    QueryBusy,
    QueryFailed,
    QueryRefused,
    QueryStopped,
    StackwatchError,
    StoreError,
)
from stackwatch.pipeline import metrics
from stackwatch.pipeline.kafka.lag import consumer_lag
from stackwatch.pipeline.kafka.topics import TopicNames
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.pipeline.runtime import Runtime
from stackwatch.pipeline.web.dashboard import register_dashboard
from stackwatch.pipeline.web.guard import BrowserRules, browser_guard
from stackwatch.pipeline.web.sqlfront import SqlFront
from stackwatch.settings import Settings, parse_duration
from stackwatch.signals.alerting import MAX_MATCHER_NAME, MAX_MATCHER_VALUE, Matcher
from stackwatch.signals.messages import utcnow
from stackwatch.storage import history, silences
from stackwatch.storage import status as store_status
from stackwatch.storage.sandbox import plain

__all__ = [
    "CSP",
    "MAX_SQL_BODY",
    "SilenceRequest",
    "lag_groups",
    "parse_silence_request",
    "register_pages",
]

log = logging.getLogger(__name__)

MAX_SQL_BODY = 64 * 1024
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
TOKEN_COOKIE = "stackwatch_token"  # noqa: S105 (a cookie name, not a secret)
LAG_TIMEOUT = 5.0
MAX_SILENCE_BODY = 16 * 1024
_MAX_MATCHERS = 32
_MAX_TEXT = {"matcher": MAX_MATCHER_NAME + 2 + MAX_MATCHER_VALUE, "comment": 4096, "created_by": 256}
_SILENCE_FIELDS = ("matchers", "duration", "comment", "created_by")


def _json(view: View, body: Any, status: int = 200) -> Response:
    payload = json.dumps(body, default=plain, ensure_ascii=False).encode("utf-8")
    return view.bytes(payload, content_type="application/json", status=status)


class BadRequest(ValueError):
    """A request the API refuses: ``status`` and a message for the ``error`` field (naming the bad field)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


async def _read_body(request: aioweb.Request, limit: int) -> bytes:
    """The whole request body, however many TCP writes it came in; BadRequest (413) above ``limit`` bytes."""
    too_large = BadRequest(f"request body larger than {limit} bytes", 413)
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def _json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, read whole up to ``limit`` bytes; BadRequest (400, 413) otherwise."""
    raw = await _read_body(cast(aioweb.Request, request), limit)  # Faust's aiohttp driver hands aiohttp's request
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadRequest(f"request body is not JSON: {error}") from None


@dataclass(frozen=True, slots=True)
class SilenceRequest:
    """A validated ``POST /api/silences`` body."""

    matchers: tuple[Matcher, ...]
    duration: timedelta
    comment: str
    created_by: str


def _text(body: dict[str, Any], name: str, default: str) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise BadRequest(f"{name}: expected a string, got {type(value).__name__}")
    if len(value) > _MAX_TEXT[name]:
        raise BadRequest(f"{name}: longer than {_MAX_TEXT[name]} characters")
    return value


def parse_silence_request(body: object) -> SilenceRequest:
    """Validate a ``POST /api/silences`` body; BadRequest with a message naming the field otherwise.

    >>> parse_silence_request({"matchers": ["alertname=capex-surge"], "duration": "2h"}).duration
    datetime.timedelta(seconds=7200)
    """
    if not isinstance(body, dict):
        raise BadRequest('expected a JSON object {"matchers": ["name=value", ...], "duration": "2h", "comment": ""}')
    unknown = sorted(set(body) - set(_SILENCE_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(map(repr, unknown))} (expected {', '.join(_SILENCE_FIELDS)})")
    texts = body.get("matchers")
    if not isinstance(texts, list) or not texts:
        raise BadRequest('matchers: expected a non-empty list of strings such as ["alertname=capex-surge"]')
    if len(texts) > _MAX_MATCHERS:
        raise BadRequest(f"matchers: at most {_MAX_MATCHERS} matchers")
    matchers = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequest(f"matchers[{index}]: expected a string, got {type(text).__name__}")
        if len(text) > _MAX_TEXT["matcher"]:
            raise BadRequest(f"matchers[{index}]: longer than {_MAX_TEXT['matcher']} characters")
        try:
            matchers.append(Matcher.parse(text))
        except ValueError as error:
            raise BadRequest(f"matchers[{index}]: {error}") from None
    if "duration" not in body:
        raise BadRequest('duration: required, such as "30m", "2h" or "1d" (or a number of seconds)')
    try:
        seconds = parse_duration(body["duration"])
    except ValueError as error:
        raise BadRequest(f"duration: {error}") from None
    if not math.isfinite(seconds) or seconds > silences.MAX_SILENCE.total_seconds():
        raise BadRequest(f"duration: at most {silences.MAX_SILENCE.days}d, got {body['duration']!r}")
    return SilenceRequest(
        tuple(matchers), timedelta(seconds=seconds), _text(body, "comment", ""), _text(body, "created_by", "api")
    )


def _flag(request: Request, name: str) -> bool:
    value = request.query.get(name, "0").lower()
    if value not in ("", "0", "1", "false", "true", "no", "yes"):
        raise BadRequest(f"{name}: expected 1 or 0, got {value[:40]!r}")
    return value in ("1", "true", "yes")


def lag_groups(settings: Settings) -> dict[str, list[str]]:
    """The consumer groups of a deployment and the topics each reads."""
    return TopicNames(settings.kafka.topic_prefix).consumer_groups(settings.kafka.app_id)


Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]


@aioweb.middleware
async def _security_headers(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
    """aiohttp middleware (the outermost): the security headers on every response, refusals and errors included."""
    try:
        response = await handler(request)
    except aioweb.HTTPException as error:  # 404, 405...: aiohttp turns it into the response
        error.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


def _guard(token: str | None) -> Middleware:
    """aiohttp middleware: the token on every path but the probes (when one is configured)."""

    @aioweb.middleware
    async def guard(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        if token is None or request.path in OPEN_PATHS:
            return await handler(request)
        given = request.query.get("token") or request.cookies.get(TOKEN_COOKIE, "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header.removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return aioweb.json_response({"error": "missing or wrong token (Authorization: Bearer ...)"}, status=401)
        response = await handler(request)
        if request.query.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return guard


def register_pages(app: faust.App, runtime: Runtime, settings: Settings, servers: Sequence[str]) -> None:
    """Attach stackwatch's endpoints, the dashboard and the security middleware to the Faust app's web server.

    Raises ConfigError when a non-loopback bind has no token (see :class:`~stackwatch.settings.web.WebSettings`).
    """
    token = settings.web.token()
    server = app.web
    if not isinstance(server, AiohttpWeb):
        raise StackwatchError(f"web: expected Faust's aiohttp driver, got {type(server).__name__}")
    # Outermost first: headers on every answer, then the browser rules (before the token: a refused cross-site
    # request never reaches the token comparison), then the token.
    rules = BrowserRules.for_web(settings.web, open_paths=OPEN_PATHS)
    server.web_app.middlewares.extend([_security_headers, browser_guard(rules), _guard(token)])
    started = time.monotonic()

    async def broker_reachable() -> str | None:
        for server in servers:
            host, _, port = server.rpartition(":")
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=2.0)
            except (OSError, ValueError, TimeoutError):
                continue
            writer.close()
            return None
        return f"broker: none of {', '.join(servers)} accepts connections"

    async def store_writable() -> str | None:
        sink = runtime.sink
        if sink is None or sink.store_thread is None:
            return None
        thread = sink.store_thread
        if thread.store.read_only:
            return "sink: DuckDB file opened read-only"
        if not os.access(thread.store.path, os.W_OK):
            return f"sink: DuckDB file {thread.store.path} is not writable"
        try:
            await asyncio.wait_for(thread.call(store_status.ping, thread.store.connection), 5.0)
        except TimeoutError:
            return "sink: the store thread did not answer within 5s (a long write?)"
        except Exception as error:  # any DuckDB failure here means not ready, with its reason
            return f"sink: DuckDB does not answer: {error}"
        return None

    async def live_figures() -> metrics.Live:
        sources: tuple[metrics.SourceFigures, ...] = ()
        if runtime.ingest is not None:
            sources = tuple(
                metrics.SourceFigures(
                    s.name, s.type, s.items_seen, s.items_rejected, s.failures, s.polls, s.consecutive_failures == 0
                )
                for s in runtime.ingest.scheduler.states.values()
            )
        try:
            lag = await asyncio.wait_for(consumer_lag(servers, lag_groups(settings)), LAG_TIMEOUT)
        except (BrokerError, TimeoutError) as error:
            log.debug("metrics: consumer lag unavailable: %s", error)
            lag = {}
        sink_rows = None
        alerts: dict[str, int] = {}
        deliveries: dict[str, int] = {}
        snapshot_age = None
        if runtime.sink is not None and runtime.sink.store_thread is not None:
            sink_rows = runtime.sink.rows_written
            thread = runtime.sink.store_thread

            try:
                alerts, deliveries = await thread.call(store_status.alert_and_delivery_counts, thread.store.connection)
            except Exception as error:  # a metric scrape must not fail because the store is busy or broken
                log.warning("metrics: cannot count alerts and deliveries: %s", error)
            try:
                snapshot_age = max(0.0, time.time() - settings.storage.snapshot_file().stat().st_mtime)
            except OSError:
                snapshot_age = None
        return metrics.Live(sources, lag, sink_rows, alerts, deliveries, snapshot_age)

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
            for check in await asyncio.gather(broker_reachable(), store_writable()):
                if check is not None:
                    reasons.append(check)
            status = 503 if reasons else 200
            return _json(self, {"ready": not reasons, "reasons": reasons}, status)

    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = metrics.render(await live_figures())
            return self.bytes(body, headers={"Content-Type": metrics.CONTENT_TYPE})

    class Status(View):
        async def get(self, request: Request) -> Response:
            live = await live_figures()
            body: dict[str, Any] = {
                "roles": sorted(runtime.roles),
                "uptime": round(time.monotonic() - started, 1),
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
            return _json(self, body)

    class Sources(View):
        async def get(self, request: Request) -> Response:
            if runtime.ingest is None:
                return _json(self, {"error": "this process does not run the ingest role"}, 404)
            return _json(self, [vars(state) for state in runtime.ingest.scheduler.states.values()])

    class Backfill(View):
        async def post(self, request: Request, name: str) -> Response:
            if runtime.ingest is None:
                return _json(self, {"error": "this process does not run the ingest role"}, 404)
            try:
                runtime.ingest.scheduler.backfill(name)
            except KeyError:
                known = ", ".join(sorted(runtime.ingest.scheduler.states)) or "none"
                return _json(self, {"error": f"unknown source {name!r} (enabled: {known})"}, 404)
            return _json(self, vars(runtime.ingest.scheduler.states[name]), 202)

    sql_front = SqlFront(settings)

    class Sql(View):
        async def get(self, request: Request) -> Response:
            return await self._run(request.query.get("q", ""))

        async def post(self, request: Request) -> Response:
            try:
                body = await _json_body(request, MAX_SQL_BODY)
            except BadRequest as error:
                return _json(self, {"error": str(error)}, error.status)
            if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
                return _json(self, {"error": 'expected a JSON object {"sql": "SELECT ..."}'}, 400)
            return await self._run(body["sql"])

        async def _run(self, sql: str) -> Response:
            if runtime.sink is None or runtime.sink.store_thread is None:
                return _json(self, {"error": "this process does not hold the store (run the sink role)"}, 503)
            if not sql.strip():
                return _json(self, {"error": "empty query"}, 400)
            try:
                answer = await sql_front.answer(runtime.sink.store_thread, sql)
            except QueryRefused as error:
                return _json(self, {"error": f"refused: {error}"}, 400)
            except QueryStopped as error:
                return _json(self, {"error": str(error), "limit": error.limit}, 400)
            except QueryFailed as error:
                return _json(self, {"error": str(error)}, 400)
            except QueryBusy as error:
                payload = json.dumps({"error": str(error)}).encode()
                return self.bytes(payload, content_type="application/json", status=429, headers={"Retry-After": "1"})
            except StoreError as error:
                log.warning("web: sql: %s", error)
                return _json(self, {"error": f"the store cannot answer: {error}"}, 503)
            return _json(self, {"columns": answer.columns, "rows": answer.rows, "truncated": answer.truncated})

    def store_thread() -> StoreThread:
        if runtime.sink is None or runtime.sink.store_thread is None:
            raise BadRequest("this process does not hold the store (run the sink role)", 503)
        return runtime.sink.store_thread

    async def on_store(view: View, answer: Callable[[StoreThread], Awaitable[Response]]) -> Response:
        """``answer(thread)``, with refusals and store failures as JSON errors (never a 500)."""
        try:
            return await answer(store_thread())
        except BadRequest as error:
            return _json(view, {"error": str(error)}, error.status)
        except ValueError as error:  # the store's own checks (a silence's end, its matchers)
            return _json(view, {"error": str(error)}, 400)
        except StoreError as error:
            log.warning("web: %s", error)
            return _json(view, {"error": f"the store cannot answer: {error}"}, 503)

    class Alerts(View):
        async def get(self, request: Request) -> Response:
            async def answer(thread: StoreThread) -> Response:
                text = request.query.get("limit", "20")
                if not text.isdigit() or not 1 <= int(text) <= 10_000:
                    raise BadRequest(f"limit: expected a whole number from 1 to 10000, got {text[:40]!r}")
                rows = await thread.call(history.recent_alerts, thread.store.connection, int(text))
                columns = ["bucket_start", "rule", "severity", "status", "dynamic", "value", "deliveries"]
                return _json(self, {"columns": columns, "rows": [list(row) for row in rows]})

            return await on_store(self, answer)

    class Silences(View):
        async def get(self, request: Request) -> Response:
            async def answer(thread: StoreThread) -> Response:
                everything = _flag(request, "all")
                found = await thread.call(
                    silences.silence_records, thread.store.connection, utcnow(), include_expired=everything
                )
                return _json(self, found)

            return await on_store(self, answer)

        async def post(self, request: Request) -> Response:
            async def answer(thread: StoreThread) -> Response:
                wanted = parse_silence_request(await _json_body(request, MAX_SILENCE_BODY))
                now = utcnow()
                silence_id = await thread.call(
                    silences.add_silence,
                    thread.store.connection,
                    wanted.matchers,
                    now + wanted.duration,
                    now=now,
                    comment=wanted.comment,
                    created_by=wanted.created_by,
                )
                shown = " ".join(str(matcher) for matcher in wanted.matchers)
                log.info("web: silence %s added by %s: %s", silence_id, wanted.created_by, shown)
                body = {
                    "id": silence_id,
                    "matchers": [str(matcher) for matcher in wanted.matchers],
                    "starts_at": now,
                    "ends_at": now + wanted.duration,
                    "state": "active",
                    "comment": wanted.comment,
                    "created_by": wanted.created_by,
                }
                return _json(self, body, 201)

            return await on_store(self, answer)

    class Silence(View):
        async def delete(self, request: Request, silence_id: str) -> Response:
            async def answer(thread: StoreThread) -> Response:
                now = utcnow()
                if not await thread.call(silences.expire_silence, thread.store.connection, silence_id, now):
                    raise BadRequest(f"no active silence {silence_id[:80]!r} (unknown, or already over)", 404)
                log.info("web: silence %s expired", silence_id)
                return _json(self, {"id": silence_id, "state": "expired", "ends_at": now})

            return await on_store(self, answer)

    app.page("/healthz")(Health)
    app.page("/readyz")(Ready)
    app.page("/metrics")(Metrics)
    app.page("/api/status")(Status)
    register_dashboard(app, runtime, settings)
    app.page("/api/sources")(Sources)
    app.page("/api/sources/{name}/backfill")(Backfill)
    app.page("/api/sql")(Sql)
    app.page("/api/alerts")(Alerts)
    app.page("/api/silences")(Silences)
    app.page("/api/silences/{silence_id}")(Silence)
