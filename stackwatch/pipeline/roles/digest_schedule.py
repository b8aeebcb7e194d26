"""Scheduled digests: each ``digests:`` entry sent to its webhooks once per period, beside the sink.

    sender = DigestSender(settings.digests, webhooks, dynamics, sink.store, client)
    sent = await sender.tick(utcnow())        # the ids of the digests this round sent (usually none)

Every :data:`CHECK_EVERY` seconds, for each digest and webhook, the latest period that has ended (:func:`last_due`)
is sent unless the store records it as sent (:mod:`stackwatch.storage.digest_log`), so a restart, SIGKILL included,
looks like no restart: a digest due while the service was down is sent when it is back, once; one sent just before
a crash, whose record was lost with it, is sent again under the same ``webhook-id``. Only the latest period is
sent: a digest is news, and after a week down the receiver gets that week's, not seven days of them. A failed
attempt is tried again after :data:`RETRY_DELAYS` and given up after the last.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from mode import Service

from stackwatch.errors import DeliveryError, StackwatchError
from stackwatch.pipeline.roles.delivery.sending import Attempt, post, signed_headers
from stackwatch.pipeline.roles.digests import digest_body
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import Settings, WebhookSettings
from stackwatch.settings.digests import WEEKDAYS, DigestSettings
from stackwatch.signals.digest import Digest, Period
from stackwatch.signals.messages import utcnow
from stackwatch.storage.digest import read_digest
from stackwatch.storage.digest_log import digest_entry, entry_id, record_attempt

__all__ = ["CHECK_EVERY", "RETRY_DELAYS", "DigestSender", "DigestService", "digest_service", "last_due"]

log = logging.getLogger(__name__)

CHECK_EVERY = 30.0
"""Seconds between two rounds: a digest is sent at most this late."""
RETRY_DELAYS = (60.0, 300.0, 900.0, 3600.0)
"""Seconds before each retry of a failed digest; after the last retry fails, it is given up."""


def last_due(digest: DigestSettings, now: datetime) -> Period:
    """The latest period of ``digest`` that has ended by ``now``: the day (or the week) before its latest ``at``.

    >>> from stackwatch.settings.digests import DigestSettings
    >>> last_due(DigestSettings(name="d", at="08:00", webhooks=["w"]), datetime(2026, 3, 10, 7, tzinfo=UTC)).describe()
    '2026-03-08 08:00 to 2026-03-09 08:00 UTC (1d)'
    """
    now = now.astimezone(UTC)
    end = datetime.combine(now.date(), digest.time_of_day(), UTC)
    if digest.period == "weekly":
        end -= timedelta(days=(now.weekday() - WEEKDAYS.index(digest.weekday)) % 7)
    span = timedelta(days=7 if digest.period == "weekly" else 1)
    if end > now:
        end -= span
    return Period(end - span, end)


class DigestSender:
    """Sends the digests that are due, one round per :meth:`tick`.

    ``dynamics``: per digest name, the dynamics it covers (all of them for a digest that names none);
    ``store``: gives the store's thread once it is open (the sink's).
    """

    def __init__(
        self,
        digests: Sequence[DigestSettings],
        webhooks: Mapping[str, WebhookSettings],
        dynamics: Mapping[str, tuple[str, ...]],
        store: Callable[[], Awaitable[StoreThread]],
        client: httpx.AsyncClient,
    ) -> None:
        self.digests = tuple(digests)
        self.webhooks = dict(webhooks)
        self.dynamics = dict(dynamics)
        self._store = store
        self._client = client

    async def tick(self, now: datetime) -> list[str]:
        """One round at ``now``: the ids of the digests delivered. StoreError when the store cannot answer (the
        next round tries again)."""
        thread = await self._store()
        connection = thread.store.connection
        delivered = []
        for settings in self.digests:
            period = last_due(settings, now)
            digest: Digest | None = None
            for name in settings.webhooks:
                key = entry_id(settings.name, name, period.end)
                entry = await thread.call(digest_entry, connection, key)
                if entry is not None and (entry.status != "retrying" or entry.next_attempt_at > now):
                    continue
                if digest is None:
                    digest = await thread.call(
                        read_digest,
                        connection,
                        settings.name,
                        period,
                        self.dynamics[settings.name],
                        every_alert=not settings.dynamics,
                    )
                attempts = 0 if entry is None else entry.attempts
                attempt = await self._send(digest, key, self.webhooks[name])
                retry_at = None
                if attempt.error is not None and attempts < len(RETRY_DELAYS):
                    retry_at = now + timedelta(seconds=max(RETRY_DELAYS[attempts], attempt.retry_after or 0.0))
                await thread.call(
                    record_attempt,
                    connection,
                    key,
                    name,
                    settings.name,
                    period.end,
                    now,
                    status=attempt.status,
                    error=attempt.error,
                    retry_at=retry_at,
                )
                if attempt.error is None:
                    delivered.append(key)
                    log.info("digest %s: sent to %s (%s)", settings.name, name, period.describe())
                else:
                    again = f"retry at {retry_at:%H:%M:%S}" if retry_at else "given up"
                    log.warning("digest %s: sending to %s failed: %s; %s", settings.name, name, attempt.error, again)
        return delivered

    async def _send(self, digest: Digest, key: str, hook: WebhookSettings) -> Attempt:
        """One attempt, stamped and signed with the time it is sent (a receiver checks that against its clock)."""
        attempt = Attempt()
        now = utcnow()
        text = json.dumps(digest_body(digest, hook.format, now), separators=(",", ":"), ensure_ascii=False)
        try:
            headers = signed_headers(key, text, hook, now)
        except DeliveryError as error:  # a secret that was not loaded: never sent unsigned
            attempt.error = str(error)
            return attempt
        try:
            await post(self._client, str(hook.url), text.encode(), headers, hook.timeout, attempt)
        except httpx.HTTPError as error:
            attempt.error = f"{type(error).__name__}: {error}"[:300]
        return attempt


class DigestService(Service):
    """Runs :meth:`DigestSender.tick` every ``every`` seconds on ``clock()``."""

    def __init__(
        self,
        make_sender: Callable[[httpx.AsyncClient], DigestSender],
        *,
        every: float = CHECK_EVERY,
        clock: Callable[[], datetime] = utcnow,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.client = httpx.AsyncClient(follow_redirects=False)
        self.sender = make_sender(self.client)
        self.every = every
        self.clock = clock

    async def on_start(self) -> None:
        self.add_future(self._run())

    async def _run(self) -> None:
        while not self.should_stop:
            try:
                await self.sender.tick(self.clock())
            except StackwatchError as error:
                log.error("digests: %s; trying again in %.0fs", error, self.every)
            await asyncio.sleep(self.every)

    async def on_shutdown(self) -> None:
        await self.client.aclose()


def digest_dynamics(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Each digest's dynamics, spelt as the taxonomy spells them (all of them when it names none). The names were
    checked when the settings loaded (:mod:`stackwatch.settings.checks`)."""
    known = settings.taxonomy().names
    folded = {name.casefold(): name for name in known}
    out: dict[str, tuple[str, ...]] = {}
    for digest in settings.digests:
        named = tuple(dict.fromkeys(folded[name.casefold()] for name in digest.dynamics if name.casefold() in folded))
        out[digest.name] = named or known
    return out


def digest_service(
    settings: Settings, store: Callable[[], Awaitable[StoreThread]], **kwargs: Any
) -> DigestService | None:
    """The service that sends ``settings.digests`` through the sink's store, or None when none is configured."""
    if not settings.digests:
        return None
    dynamics = digest_dynamics(settings)
    hooks = {hook.name: hook for hook in settings.webhooks}
    return DigestService(lambda client: DigestSender(settings.digests, hooks, dynamics, store, client), **kwargs)
