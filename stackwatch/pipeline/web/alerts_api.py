"""The alerting API, read and written through the sink's store thread (the one DuckDB writer), so the CLI's
``stackwatch alerts`` and ``stackwatch silence`` work while the service runs:

- ``GET /api/alerts?limit=20``: recent alerts with their delivery status per webhook;
- ``GET /api/alerts/{id}``: one alert in full (its labels, values, evidence and deliveries; an id's first 10 or
  more characters do), 404 when there is none;
- ``GET /api/silences`` (``?all=1`` with expired ones);
- ``POST /api/silences`` with ``{"matchers": ["alertname=capex-surge", "dynamic=~cap.*"], "duration": "2h",
  "comment": "...", "created_by": "..."}``: 201 with the silence and its ``id``, and, when this process runs the
  rules, ``warnings`` (empty, or why no configured rule's alerts can match: :mod:`stackwatch.signals.silence_check`);
- ``DELETE /api/silences/{id}``: expire it now; 404 when it is unknown or already over.

A bad request is a 4xx whose ``error`` names the field; a process without the store, or a store that cannot
answer, is a 503.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from faust.web import Request, Response, View

from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.pipeline.web.context import Routes, context_of, on_store
from stackwatch.pipeline.web.requests import BadRequest, flag, json_answer, json_body, whole_number
from stackwatch.settings import parse_duration
from stackwatch.signals.alerting import MAX_MATCHER_NAME, MAX_MATCHER_VALUE, Matcher
from stackwatch.signals.conditions import Rule
from stackwatch.signals.messages import utcnow
from stackwatch.signals.silence_check import silence_warnings
from stackwatch.storage import history, silences

__all__ = [
    "ALERT_COLUMNS",
    "MAX_SILENCE_BODY",
    "ROUTES",
    "Alerts",
    "OneAlert",
    "Silence",
    "SilenceRequest",
    "Silences",
    "parse_silence_request",
]

log = logging.getLogger(__name__)

MAX_SILENCE_BODY = 16 * 1024
ALERT_COLUMNS = ("bucket_start", "rule", "severity", "status", "dynamic", "value", "deliveries")
_MAX_MATCHERS = 32
_MAX_TEXT = {"matcher": MAX_MATCHER_NAME + 2 + MAX_MATCHER_VALUE, "comment": 4096, "created_by": 256}
_SILENCE_FIELDS = ("matchers", "duration", "comment", "created_by")


@dataclass(frozen=True, slots=True)
class SilenceRequest:
    """A validated ``POST /api/silences`` body."""

    matchers: tuple[Matcher, ...]
    duration: timedelta
    comment: str
    created_by: str


def _text(body: Mapping[str, object], name: str, default: str) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise BadRequest(f"{name}: expected a string, got {type(value).__name__}")
    if len(value) > _MAX_TEXT[name]:
        raise BadRequest(f"{name}: longer than {_MAX_TEXT[name]} characters")
    return value


def _matchers(texts: object) -> tuple[Matcher, ...]:
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
    return tuple(matchers)


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
    matchers = _matchers(body.get("matchers"))
    if "duration" not in body:
        raise BadRequest('duration: required, such as "30m", "2h" or "1d" (or a number of seconds)')
    try:
        seconds = parse_duration(body["duration"])
    except ValueError as error:
        raise BadRequest(f"duration: {error}") from None
    if not math.isfinite(seconds) or seconds > silences.MAX_SILENCE.total_seconds():
        raise BadRequest(f"duration: at most {silences.MAX_SILENCE.days}d, got {body['duration']!r}")
    return SilenceRequest(
        matchers, timedelta(seconds=seconds), _text(body, "comment", ""), _text(body, "created_by", "api")
    )


async def recent_alerts(thread: StoreThread, query: Mapping[str, str]) -> Response:
    """``{"columns": [...], "rows": [...]}``: the latest ``?limit=`` alerts (1 to 10000, 20 by default)."""
    limit = whole_number(query, "limit", 20, 1, 10_000)
    rows = await thread.call(history.recent_alerts, thread.store.connection, limit)
    return json_answer({"columns": list(ALERT_COLUMNS), "rows": [list(row) for row in rows]})


async def one_alert(thread: StoreThread, alert_id: str) -> Response:
    """:func:`~stackwatch.storage.history.alert_record` of ``alert_id``; 404 when there is none."""
    record = await thread.call(history.alert_record, thread.store.connection, alert_id)
    if record is None:
        raise BadRequest(f"no alert with id {alert_id[:80]!r}", status=404)
    return json_answer(record)


async def list_silences(thread: StoreThread, query: Mapping[str, str]) -> Response:
    """The active silences (``?all=1``: the expired ones too)."""
    everything = flag(query, "all")
    found = await thread.call(silences.silence_records, thread.store.connection, utcnow(), include_expired=everything)
    return json_answer(found)


async def add_silence(thread: StoreThread, request: Request, rules: Sequence[Rule] | None = None) -> Response:
    """Store the silence the request's body asks for: 201 with it and its ``id``; with ``rules`` (the running
    engine's), also ``warnings`` when no rule's alerts can match it."""
    wanted = parse_silence_request(await json_body(request, MAX_SILENCE_BODY))
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
    if rules is not None:
        warnings = silence_warnings(wanted.matchers, rules)
        for warning in warnings:
            log.warning("web: silence %s: %s", silence_id, warning)
        body["warnings"] = warnings
    return json_answer(body, 201)


async def expire_silence(thread: StoreThread, silence_id: str) -> Response:
    """End an active silence now; 404 when there is none by that id."""
    now = utcnow()
    if not await thread.call(silences.expire_silence, thread.store.connection, silence_id, now):
        raise BadRequest(f"no active silence {silence_id[:80]!r} (unknown, or already over)", 404)
    log.info("web: silence %s expired", silence_id)
    return json_answer({"id": silence_id, "state": "expired", "ends_at": now})


class Alerts(View):
    """``GET /api/alerts``: :func:`recent_alerts`."""

    async def get(self, request: Request) -> Response:
        return await on_store(context_of(request).runtime, lambda thread: recent_alerts(thread, request.query))


class OneAlert(View):
    """``GET /api/alerts/{alert_id}``: :func:`one_alert`."""

    async def get(self, request: Request, alert_id: str) -> Response:
        return await on_store(context_of(request).runtime, lambda thread: one_alert(thread, alert_id))


class Silences(View):
    """``GET /api/silences``: :func:`list_silences`; ``POST /api/silences``: :func:`add_silence`."""

    async def get(self, request: Request) -> Response:
        return await on_store(context_of(request).runtime, lambda thread: list_silences(thread, request.query))

    async def post(self, request: Request) -> Response:
        runtime = context_of(request).runtime
        rules = runtime.rules.rules if runtime.rules is not None else None  # None: no worker role here to judge by
        return await on_store(runtime, lambda thread: add_silence(thread, request, rules))


class Silence(View):
    """``DELETE /api/silences/{silence_id}``: :func:`expire_silence`."""

    async def delete(self, request: Request, silence_id: str) -> Response:
        return await on_store(context_of(request).runtime, lambda thread: expire_silence(thread, silence_id))


ROUTES: Routes = (
    ("/api/alerts", Alerts),
    ("/api/alerts/{alert_id}", OneAlert),
    ("/api/silences", Silences),
    ("/api/silences/{silence_id}", Silence),
)
