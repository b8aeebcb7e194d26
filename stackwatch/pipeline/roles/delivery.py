"""Webhook delivery from the DuckDB outbox.

An alert is recorded (with one pending delivery per webhook) before any attempt. The deliverer groups pending
deliveries into notifications (``alerting.group_by`` / ``group_wait``; silenced and inhibited alerts are marked,
not sent), then POSTs each notification, signed per Standard Webhooks when the webhook has a secret. The
webhook-id is the notification's id, the same on every retry and after a restart.

2xx is success; 410 stops; 429 and 503 honour Retry-After; anything else (timeouts, refused connections,
redirects to another host) retries on :data:`RETRY_SCHEDULE` with jitter until the last try marks it dead.
Each target has at most ``max_concurrency`` requests in flight; response bodies are read up to a cap::

    deliverer = Deliverer(store_thread, {hook.name: hook for hook in settings.webhooks}, grouping)
    await deliverer.deliver_due()       # or: await deliverer.run() as a background task
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks import Webhook

from stackwatch.errors import DeliveryError
from stackwatch.pipeline.roles.markup import discord_link, discord_text, slack_link, slack_text
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import Settings, WebhookSettings
from stackwatch.signals.alerting import Inhibition
from stackwatch.signals.messages import utcnow
from stackwatch.storage import outbox
from stackwatch.storage.outbox import AlertRow, Grouping, Notification

__all__ = [
    "FORMATS",
    "MAX_RESPONSE_BYTES",
    "RETRY_SCHEDULE",
    "Deliverer",
    "grouping_from",
    "render_body",
    "retry_delay",
]

log = logging.getLogger(__name__)

RETRY_SCHEDULE: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
"""Seconds to wait after attempt 1, 2, ...; the attempt after the last wait is the last try."""
MAX_DELAY = 36000.0
"""No wait (schedule, jitter or Retry-After) is longer than this."""
JITTER = 0.1
MAX_RESPONSE_BYTES = 64 * 1024
MAX_REDIRECTS = 3
_COLORS = {"critical": 0xD62728, "warning": 0xFF7F0E, "info": 0x1F77B4}


def retry_delay(attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float | None:
    """Seconds before the next try after failed ``attempt`` (1-based); None once the schedule is used up.

    >>> retry_delay(1, rng=random.Random(1)) is not None and 4.5 <= retry_delay(1) <= 5.5
    True
    """
    if attempt > len(RETRY_SCHEDULE):
        return None
    delay = RETRY_SCHEDULE[attempt - 1] * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_DELAY)


def grouping_from(settings: Settings) -> Grouping:
    alerting = settings.alerting
    return Grouping(
        group_by=tuple(alerting.group_by),
        group_wait=timedelta(seconds=alerting.group_wait),
        inhibitions=tuple(Inhibition(i.source, i.target, tuple(i.equal)) for i in alerting.inhibit),
    )


# -- formats ---------------------------------------------------------------------------------------------------------


def _alert_json(row: AlertRow) -> dict[str, Any]:
    return {**row.alert.to_dict(), "evidence": dict(row.evidence)}


def _standard(note: Notification, now: datetime) -> dict[str, Any]:
    """Standard Webhooks JSON. ``data`` is the first alert (with ``alerts``: all of the group's)."""
    statuses = {row.alert.status for row in note.alerts}
    kind = "alert.group" if len(statuses) > 1 else f"alert.{'resolved' if statuses == {'resolved'} else 'fired'}"
    alerts = [_alert_json(row) for row in note.alerts]
    return {
        "type": kind,
        "timestamp": now.isoformat(),
        "data": {**alerts[0], "group_key": note.group_key, "alerts": alerts},
    }


def _title(row: AlertRow, escape: Callable[[str], str]) -> str:
    mark = "RESOLVED" if row.alert.status == "resolved" else row.alert.severity.upper()
    return f"[{mark}] {escape(row.alert.rule)}"


def _articles(row: AlertRow, limit: int = 3) -> list[dict[str, str]]:
    """The top evidence articles, each field a string (evidence is stored JSON: anything may be missing)."""
    items = row.evidence.get("articles")
    if not isinstance(items, list):
        return []
    return [
        {key: str(item.get(key) or "") for key in ("title", "url", "source")}
        for item in items[:limit]
        if isinstance(item, dict)
    ]


def _lines(lines: list[str], limit: int) -> str:
    """Whole lines joined while they fit in ``limit`` characters (markup is never cut in the middle)."""
    kept: list[str] = []
    size = -1
    for line in lines:
        if size + 1 + len(line) > limit:
            break
        kept.append(line)
        size += 1 + len(line)
    return "\n".join(kept)


def _slack(note: Notification, now: datetime) -> dict[str, Any]:
    """Slack incoming-webhook blocks: a header, one section per alert with its top articles as links.

    Feed text is escaped as mrkdwn (``&``, ``<``, ``>``) and text objects are ``verbatim`` (no automatic links or
    mentions); an article links only to an http(s) URL.
    """
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"stackwatch: {len(note.alerts)} alert(s)"[:150]}}
    ]
    for row in note.alerts[:20]:  # Slack allows 50 blocks per message
        lines = [f"*{_title(row, slack_text)}*", slack_text(row.alert.message, 1500)]
        lines += [
            f"• {slack_link(item['url'], item['title'], 2400)} ({slack_text(item['source'], 100)})"
            for item in _articles(row)
        ]
        text = _lines(lines, 3000)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}})
    group = {"type": "mrkdwn", "text": f"group {slack_text(note.group_key, 290)}", "verbatim": True}
    blocks.append({"type": "context", "elements": [group]})
    summary = "; ".join(f"{_title(row, str)}: {row.alert.message}" for row in note.alerts)
    return {"text": slack_text(summary, 3000), "blocks": blocks}


def _discord(note: Notification, now: datetime) -> dict[str, Any]:
    """Discord webhook embeds: one per alert (at most 10), coloured by severity.

    Feed text is escaped as Discord markdown (mentions included), ``allowed_mentions`` lets nothing ping, and an
    article links only to an http(s) URL.
    """
    embeds = []
    for row in note.alerts[:10]:
        fields = [
            {
                "name": discord_text(item["source"] or "article", 256),
                "value": discord_link(
                    item["url"], item["title"] or "(no title)", 1024
                ),  # never empty: Discord refuses it
            }
            for item in _articles(row)
        ]
        embeds.append(
            {
                "title": _title(row, lambda text: discord_text(text, 200)),
                "description": discord_text(row.alert.message, 4096),
                "color": 0x2CA02C if row.alert.status == "resolved" else _COLORS.get(row.alert.severity, 0x7F7F7F),
                "timestamp": row.alert.bucket_start.isoformat(),
                "fields": fields,
            }
        )
    content = f"stackwatch: {len(note.alerts)} alert(s) ({discord_text(note.group_key, 1900)})"
    return {"content": content, "embeds": embeds, "allowed_mentions": {"parse": []}}


FORMATS = {"standard": _standard, "slack": _slack, "discord": _discord}
"""Webhook body formats by name: each takes a notification and the send time and returns the JSON body."""


def render_body(note: Notification, format: str, now: datetime | None = None) -> dict[str, Any]:
    """The JSON body of ``note`` in a webhook format (``standard``, ``slack`` or ``discord``)."""
    return FORMATS[format](note, now or utcnow())


# -- the deliverer ---------------------------------------------------------------------------------------------------


def _request(note: Notification, hook: WebhookSettings, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt, signed per Standard Webhooks when the webhook has a secret."""
    if hook.secret_env is not None and hook.secret is None:
        raise DeliveryError(f"the secret named by secret_env ({hook.secret_env}) was not loaded; not sending unsigned")
    body = json.dumps(render_body(note, hook.format, now), separators=(",", ":"), default=str)
    headers = {
        "content-type": "application/json",
        "webhook-id": note.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "user-agent": "stackwatch-webhooks/0.1",
    }
    if hook.secret is not None:
        headers["webhook-signature"] = Webhook(hook.secret.get_secret_value()).sign(note.id, now, body)
    return body.encode(), headers


class _Attempt:
    __slots__ = ("error", "retry_after", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.retry_after: float | None = None
        self.error: str | None = None


class Deliverer:
    """Groups the outbox into notifications and delivers what is due."""

    def __init__(
        self,
        store: StoreThread,
        webhooks: Mapping[str, WebhookSettings],
        grouping: Grouping | None = None,
        *,
        poll_interval: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._webhooks = dict(webhooks)
        self._grouping = grouping or Grouping()
        self._poll_interval = poll_interval
        self._client = httpx.AsyncClient(follow_redirects=False, transport=transport)
        self._limits = {name: asyncio.Semaphore(hook.max_concurrency) for name, hook in self._webhooks.items()}
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def reconfigure(self, webhooks: Mapping[str, WebhookSettings], grouping: Grouping) -> None:
        """Use new targets and grouping from the next round on (``stackwatch reload``); limits are per target."""
        old = self._webhooks
        self._webhooks = dict(webhooks)
        self._grouping = grouping
        self._limits = {
            name: self._limits[name]
            if name in old and old[name].max_concurrency == hook.max_concurrency
            else asyncio.Semaphore(hook.max_concurrency)
            for name, hook in self._webhooks.items()
        }
        self.wake()

    async def close(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        """Deliver until cancelled. Pending notifications are due at once on start (see ``retry_pending_now``)."""
        try:
            resumed = await self._store.call(outbox.retry_pending_now, self._store.store.connection, utcnow())
        except Exception:
            log.exception("delivery: could not reschedule pending notifications; they keep their schedule")
        else:
            if resumed:
                log.info("delivery: %d pending notification(s) from before the start are due now", resumed)
        while True:
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery: unexpected error; will retry")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):  # not wait_for: see Scheduler._run
                    await self._wake.wait()
            self._wake.clear()

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Group what has waited long enough, then attempt every due notification. Returns how many were tried.

        ``now`` (default: the clock) decides what is due; tests pass a later time instead of sleeping.
        """
        moment = now or utcnow()
        connection = self._store.store.connection
        await self._store.call(outbox.dispatch, connection, moment, self._grouping)
        due = await self._store.call(outbox.due_notifications, connection, moment)
        await asyncio.gather(*(self._limited(note) for note in due))
        return len(due)

    async def _limited(self, note: Notification) -> None:
        limit = self._limits.get(note.webhook)
        if limit is None:
            await self._record(note, "dead", None, f"webhook {note.webhook!r} is no longer configured", None)
            return
        async with limit:
            await self._attempt(note, self._webhooks[note.webhook])

    async def _attempt(self, note: Notification, hook: WebhookSettings) -> None:
        attempt = note.attempts + 1
        now = datetime.now(UTC)
        result = _Attempt()
        try:
            body, headers = _request(note, hook, now)
        except Exception as failure:  # this notification's error: recorded and backed off below
            log.debug("delivery: cannot prepare %s", note.id, exc_info=True)
            result.error = f"cannot prepare the request: {type(failure).__name__}: {failure}"
        else:
            try:
                async with asyncio.timeout(hook.timeout):
                    await self._post(str(hook.url), body, headers, hook.timeout, result)
            except TimeoutError:
                result.error = f"timed out after {hook.timeout:g}s"
            except httpx.HTTPError as failure:
                result.error = f"{type(failure).__name__}: {failure}"
            except Exception as failure:  # as above: recorded and backed off, never a tight loop
                log.debug("delivery: unexpected error sending %s", note.id, exc_info=True)
                result.error = f"{type(failure).__name__}: {failure}"
        status = result.status
        if result.error is None:
            await self._record(note, "delivered", status, None, None)
            log.info("delivery: %d alert(s) delivered to %s (%s)", len(note.alerts), note.webhook, note.id)
            return
        delay = None if status == 410 else retry_delay(attempt, result.retry_after, self._rng)
        if delay is None:
            await self._record(note, "dead", status, result.error, None)
            log.error("delivery: %s to %s is dead after %d attempts: %s", note.id, note.webhook, attempt, result.error)
            return
        await self._record(note, "pending", status, result.error, utcnow() + timedelta(seconds=delay))
        log.warning(
            "delivery: %s to %s failed (%s); retry %d in %.0fs", note.id, note.webhook, result.error, attempt, delay
        )

    async def _post(self, url: str, body: bytes, headers: dict[str, str], limit: float, result: _Attempt) -> None:
        """POST, following at most a few 307/308 redirects on the same scheme, host and port; fill ``result``."""
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            async with self._client.stream("POST", target, content=body, headers=headers, timeout=limit) as response:
                result.status = status = response.status_code
                excerpt = await _read_capped(response)
                if status in (307, 308) and "location" in response.headers:
                    following = target.join(response.headers["location"])
                    if (following.scheme, following.host, following.port) != (target.scheme, target.host, target.port):
                        result.error = f"HTTP {status}: redirect to another host ({following.host}) not followed"
                        return
                    target = following
                    continue
                if status in (429, 503):
                    result.retry_after = _seconds(response.headers.get("retry-after"))
                if not 200 <= status < 300:
                    result.error = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
                return
        result.error = f"more than {MAX_REDIRECTS} redirects"

    async def _record(
        self, note: Notification, status: str, http_status: int | None, error: str | None, next_at: datetime | None
    ) -> None:
        await self._store.call(
            outbox.record_attempt,
            self._store.store.connection,
            note.id,
            status=status,
            http_status=http_status,
            error=error,
            next_attempt_at=next_at,
        )


async def _read_capped(response: httpx.Response) -> str:
    """Read at most MAX_RESPONSE_BYTES of the body (a hostile receiver cannot make us buffer more)."""
    data = bytearray()
    async for chunk in response.aiter_raw():
        data += chunk[: MAX_RESPONSE_BYTES - len(data)]
        if len(data) >= MAX_RESPONSE_BYTES:
            break
    return bytes(data[:200]).decode("utf-8", "replace").strip()


def _seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return min(MAX_DELAY, max(0.0, float(value)))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(MAX_DELAY, max(0.0, (moment - datetime.now(UTC)).total_seconds()))
