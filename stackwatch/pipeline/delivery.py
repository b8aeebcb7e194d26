"""Webhook delivery from the DuckDB outbox.

An alert is recorded (with one pending delivery per webhook) before any attempt. Each attempt POSTs the alert,
signed per Standard Webhooks when the webhook has a secret; the webhook-id is the delivery's id, the same on
every retry. 2xx is success; 410 stops; 429/503 honour Retry-After; anything else retries on a growing
schedule until the last try marks the delivery dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks import Webhook

from stackwatch.pipeline.storethread import StoreThread
from stackwatch.settings import WebhookSettings
from stackwatch.signals.messages import Alert, utcnow
from stackwatch.storage.store import Delivery

__all__ = ["RETRY_SCHEDULE", "Deliverer", "render_body"]

log = logging.getLogger(__name__)

RETRY_SCHEDULE: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
"""Seconds to wait after attempt 1, 2, ...; after the last, the delivery is dead."""
MAX_RESPONSE_BYTES = 64 * 1024


def render_body(alert: Alert, format: str) -> dict[str, Any]:
    """The JSON body for one webhook format."""
    if format == "slack":
        return {
            "text": f"[{alert.severity}] {alert.rule}: {alert.message}",
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"*{alert.rule}* ({alert.severity})\n{alert.message}"},
                }
            ],
        }
    if format == "discord":
        return {"content": f"**{alert.rule}** ({alert.severity}): {alert.message}"[:2000]}
    return {"type": "alert.fired", "timestamp": alert.fired_at.isoformat(), "data": alert.to_dict()}


class Deliverer:
    """Polls the outbox and delivers what is due."""

    def __init__(
        self,
        store: StoreThread,
        webhooks: Mapping[str, WebhookSettings],
        *,
        poll_interval: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._store = store
        self._webhooks = dict(webhooks)
        self._poll_interval = poll_interval
        self._client = httpx.AsyncClient(follow_redirects=False, transport=transport)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery: unexpected error; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()

    async def deliver_due(self) -> int:
        due = await self._store.call(self._store.store.due_deliveries, utcnow())
        for delivery in due:
            await self._attempt(delivery)
        return len(due)

    async def _attempt(self, delivery: Delivery) -> None:
        hook = self._webhooks.get(delivery.webhook)
        attempt = delivery.attempts + 1
        if hook is None:
            await self._record(delivery, "dead", None, f"webhook {delivery.webhook!r} is no longer configured", None)
            return
        body = json.dumps(render_body(delivery.alert, hook.format), separators=(",", ":"))
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "user-agent": "stackwatch-webhooks/0.1",
        }
        if hook.secret is not None:
            headers["webhook-signature"] = Webhook(hook.secret.get_secret_value()).sign(delivery.id, now, body)
        status: int | None = None
        retry_after: float | None = None
        try:
            async with self._client.stream(
                "POST", str(hook.url), content=body.encode(), headers=headers, timeout=hook.timeout
            ) as response:
                status = response.status_code
                await _drain(response)
                if status in (429, 503):
                    retry_after = _seconds(response.headers.get("retry-after"))
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        if error is None:
            await self._record(delivery, "delivered", status, None, None)
            log.info("delivery: alert %s delivered to %s (%s)", delivery.alert.id, delivery.webhook, delivery.id)
        elif status == 410 or attempt > len(RETRY_SCHEDULE):
            await self._record(delivery, "dead", status, error, None)
            log.error(
                "delivery: %s to %s is dead after %d attempts: %s",
                delivery.id,
                delivery.webhook,
                attempt,
                error,
            )
        else:
            delay = RETRY_SCHEDULE[attempt - 1] * random.uniform(0.9, 1.1)
            if retry_after is not None:
                delay = max(delay, retry_after)
            await self._record(delivery, "pending", status, error, utcnow() + timedelta(seconds=delay))
            log.warning(
                "delivery: %s to %s failed (%s); retry %d in %.0fs",
                delivery.id,
                delivery.webhook,
                error,
                attempt,
                delay,
            )

    async def _record(
        self,
        delivery: Delivery,
        status: str,
        http_status: int | None,
        error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        await self._store.call(
            self._store.store.record_attempt,
            delivery.id,
            status=status,
            http_status=http_status,
            error=error,
            next_attempt_at=next_attempt_at,
        )


async def _drain(response: httpx.Response) -> None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES:
            break


def _seconds(value: str | None) -> float | None:
    try:
        return min(6 * 3600.0, max(0.0, float(value))) if value else None
    except ValueError:
        return None
