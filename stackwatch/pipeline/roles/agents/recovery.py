"""The rules agent's state, rebuilt from the store at start: with the embedded broker nothing else survives.

    recover = StoreRecovery(sink.store)
    recovered = await recover(engine, retention)    # before the agent reads its first observation
    state.update(recovered.rebuilt.state); counts.update(recovered.rebuilt.counts)
    for alert in recovered.missing: ...             # alerts lost in flight at the crash: sent now, same ids

The replayed state's firing series are then made to agree with the alerts the store recorded
(:func:`stackwatch.signals.rule_state.reconcile`): the replay runs the store's transactions as batches, as the
sink sent them, but with each article's story as stored now, so its verdicts can differ where articles arrived
late or stories grew later.

The replay is :func:`stackwatch.signals.rule_state.rebuild`, the engine code the stream and ``rules backtest`` run.
Rules on a z-score or momentum of a dynamic's article count start it from the store's EWMA state before the
replay (``seeds``), so their signals go on as the store's do instead of warming up again from zero.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.signals.indicators import bucket_start
from stackwatch.signals.messages import Alert, utcnow
from stackwatch.signals.rule_state import (
    Notice,
    Rebuilt,
    baselines_wanted,
    lookback,
    open_since,
    rebuild,
    reconcile,
    seeds,
    series_notices,
    unrecorded,
)
from stackwatch.signals.rules import RuleEngine
from stackwatch.storage.recovery import recorded_alerts, stored_baselines, stored_history

__all__ = ["Recovered", "Recovery", "StoreRecovery"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recovered:
    """The rules agent's state as the stream left it, and the alerts the store never received."""

    rebuilt: Rebuilt
    missing: list[Alert]
    since: datetime


Recovery = Callable[[RuleEngine, timedelta], Awaitable[Recovered]]
"""Rebuilds the rules' state for an engine, with the stream's bucket retention."""


class StoreRecovery:
    """Reads the store through the sink's thread (the sink runs in the same process as the embedded broker)."""

    def __init__(self, store: Callable[[], Awaitable[StoreThread]]) -> None:
        self._store = store

    async def __call__(self, engine: RuleEngine, retention: timedelta) -> Recovered:
        thread = await self._store()
        connection = thread.store.connection
        recorded = await thread.call(recorded_alerts, connection, [rule.name for rule in engine.rules])
        reach = lookback(engine.rules, floor=retention)
        since = utcnow() - reach
        series = series_notices(engine, recorded.notices)
        if (firing_since := open_since(series)) is not None:
            since = min(since, firing_since - reach)  # a series still firing: replay from its start
        since = bucket_start(since, "1d")  # whole buckets only: a partial first bucket would count too few
        history = await thread.call(stored_history, connection, since)
        baselines = await thread.call(stored_baselines, connection, baselines_wanted(engine, since))
        seed = seeds(engine, baselines)
        rebuilt = await asyncio.to_thread(rebuild, engine, history, retention=retention, seed=seed)
        missing = unrecorded(rebuilt.alerts, recorded.newest, recorded.ids)
        reconciled = reconcile(rebuilt.state, series_notices(engine, [*series, *map(Notice.of, missing)]))
        log.info(
            "rules: state rebuilt from %d stored article(s) published since %s; %d alert(s) the store never "
            "received are sent now; %d series set firing or resolved as the recorded alerts say",
            rebuilt.replayed,
            since.isoformat(),
            len(missing),
            len(reconciled),
        )
        return Recovered(rebuilt, missing, since)
