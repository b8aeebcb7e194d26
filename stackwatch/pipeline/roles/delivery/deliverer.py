"""The deliverer: groups the DuckDB outbox into notifications and sends each one that is due.

An alert is recorded (with one pending delivery per webhook) before any attempt. Each round, new deliveries join
their group (``alerting.group_by``) and every group whose timer is due (``group_wait``, ``group_interval``,
``repeat_interval``: :mod:`stackwatch.storage.alert_groups`) becomes a notification when it has something to say;
silenced and inhibited alerts are marked, not sent. Then every due notification is attempted (:mod:`.sending`)
and its outcome recorded: delivered, dead, or pending again at the time :func:`~.retry.retry_delay` gives. Each
target has at most ``max_concurrency`` requests in flight::

    deliverer = Deliverer(store_thread, {hook.name: hook for hook in webhooks}, grouping_from(alerting))
    await deliverer.deliver_due()       # or: await deliverer.run() as a background task
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import httpx

from stackwatch.pipeline.roles.delivery.retry import retry_delay
from stackwatch.pipeline.roles.delivery.sending import Attempt, post, signed_request
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import AlertingSettings, WebhookSettings
from stackwatch.signals.alerting import Inhibition
from stackwatch.signals.messages import utcnow
from stackwatch.storage import outbox
from stackwatch.storage.outbox import Grouping, Notification

__all__ = ["Deliverer", "grouping_from"]

log = logging.getLogger("stackwatch.pipeline.roles.delivery")


def grouping_from(alerting: AlertingSettings) -> Grouping:
    """How and when the outbox becomes notifications, from the ``alerting:`` section."""
    return Grouping(
        group_by=tuple(alerting.group_by),
        group_wait=timedelta(seconds=alerting.group_wait),
        inhibitions=tuple(Inhibition(i.source, i.target, tuple(i.equal)) for i in alerting.inhibit),
        group_interval=timedelta(seconds=alerting.group_interval),
        repeat_interval=timedelta(seconds=alerting.repeat_interval),
    )


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
        result = Attempt()
        try:
            body, headers = signed_request(note, hook, now)
        except Exception as failure:  # this notification's error: recorded and backed off below
            log.debug("delivery: cannot prepare %s", note.id, exc_info=True)
            result.error = f"cannot prepare the request: {type(failure).__name__}: {failure}"
        else:
            try:
                async with asyncio.timeout(hook.timeout):
                    await post(self._client, str(hook.url), body, headers, hook.timeout, result)
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
