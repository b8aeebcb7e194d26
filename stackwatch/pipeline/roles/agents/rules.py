"""The rules agent: observations → bucket counts → the rule engine → indicator updates and alerts.

The sink sends the observations after each write: the stored facts of the articles the write changed, their
stories included (:mod:`stackwatch.pipeline.roles.sink`). Every observation batch is keyed alike
(``RULES_KEY``), so one partition (one worker) sees all of them in order: rules that span dynamics (composite
indices, quiet dynamics) need the whole stream, and the stream is small (one record per store write).

The agent's state is bucket membership (``bucket-shards``) and the engine's state (bucket history, ``for``
streaks, cooldowns, firing/resolved, first-seen arming, in ``rule-state``):

- on a real Kafka it lives in changelogged tables, so a restarted worker picks up where the last one stopped;
- with the embedded broker, which keeps nothing across a restart, it lives in memory and is rebuilt from the
  store before the first observation is read (``recovery``, see :mod:`stackwatch.pipeline.roles.agents.recovery`),
  and alerts the store never received are sent again under their own ids.

Either way a replayed batch fires nothing twice.

A batch's alerts are acknowledged by the broker before the engine's state for that batch is written: a crash in
between replays the batch and re-sends the same alert ids, never the reverse (state saying "sent" for an alert
that was lost).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Callable, MutableMapping, Sequence
from datetime import timedelta
from typing import Any

import faust

from stackwatch.pipeline.kafka.codec import decode, encode
from stackwatch.pipeline.roles.agents.common import AgentTopics, BufferedTable, DeadLetters
from stackwatch.pipeline.roles.agents.recovery import Recovery
from stackwatch.settings import AlertingSettings, RuleSettings
from stackwatch.settings.alerts import engine_rules
from stackwatch.signals.alerting import Route, route
from stackwatch.signals.baselines import BaselineParams
from stackwatch.signals.counts import DEFAULT_RETENTION, BucketCounts
from stackwatch.signals.messages import MessageError, Observations, utcnow
from stackwatch.signals.rules import RuleEngine

__all__ = ["PRUNE_EVERY", "build_engine", "register_rules"]

PRUNE_EVERY = 300.0
"""Seconds between sweeps of expired buckets."""


def build_engine(
    rules: Sequence[RuleSettings], alerting: AlertingSettings, baseline: BaselineParams | None = None
) -> RuleEngine:
    """The engine for the ``rules:`` section, with label routes from ``alerting.routes`` and the store's EWMA
    parameters (``indicators:``), so a rule's z-score and momentum are the stored ones."""
    routes = [Route(item.match, tuple(item.webhooks)) for item in alerting.routes]
    return RuleEngine(
        engine_rules(rules), router=lambda labels: route(labels, routes), baseline=baseline or BaselineParams()
    )


def register_rules(
    app: faust.App,
    topics: AgentTopics,
    engine: Callable[[], RuleEngine],
    *,
    retention: timedelta = DEFAULT_RETENTION,
    recovery: Recovery | None = None,
) -> None:
    """``engine()`` gives the current engine: a reload swaps in new rules, and their state carries over by name.
    With ``recovery`` the state is kept in memory and rebuilt by it at start, else in changelogged tables."""
    dead = DeadLetters(topics.deadletter)
    members: MutableMapping[str, list[str]]
    state: MutableMapping[str, Any]  # the engine's state, as RuleEngine.evaluate types it
    if recovery is None:
        members, state = app.Table("bucket-shards", default=None), app.Table("rule-state", default=None)
    else:
        members, state = {}, {}
    counts = BucketCounts(members, retention)
    last_sweep = time.monotonic()

    @app.agent(topics.observations, name="evaluate")
    async def evaluate(stream: AsyncIterable[bytes]) -> None:
        nonlocal last_sweep
        if recovery is not None and not state:
            recovered = await recovery(engine(), retention)
            members.update(recovered.rebuilt.counts)
            state.update(recovered.rebuilt.state)
            sent = [await topics.alerts.send(key=alert.id.encode(), value=encode(alert)) for alert in recovered.missing]
            await asyncio.gather(*sent)
        async for payload in stream:
            try:
                batch = decode(Observations, payload)
            except MessageError as error:
                await dead.send("evaluate", f"not an observation batch: {error}", payload, "observations")
                continue
            now = utcnow()
            if time.monotonic() - last_sweep > PRUNE_EVERY:
                last_sweep = time.monotonic()
                counts.sweep(now)
            writes = BufferedTable(state)
            result = engine().evaluate(writes, counts, batch.items, now)
            for update in result.updates:
                await topics.indicators.send(key=update.key.encode(), value=encode(update))
            sent = [await topics.alerts.send(key=alert.id.encode(), value=encode(alert)) for alert in result.alerts]
            await asyncio.gather(*sent)
            writes.flush()
