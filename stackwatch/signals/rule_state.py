"""Rebuilding the rules' state from stored articles: what a restart does when the broker kept nothing.

With the embedded (memory-only) broker the rules agent's state (bucket counts, ``for`` streaks, firing and resolved
series, cooldowns, first-seen arming, spike and trend baselines, quiet clocks) would die with the process. Instead
it is derived again at start from the articles the store holds, by the same engine code the stream and
``rules backtest`` run, over the stretch of event time the configured rules look back::

    since = utcnow() - lookback(engine.rules)
    rebuilt = rebuild(engine, stored_history_since(since), retention=timedelta(days=3))
    state, counts = rebuilt.state, rebuilt.counts      # the agent goes on from these
    missing = unrecorded(rebuilt.alerts, recorded)      # alerts lost in flight at the crash: send them now

Articles are replayed in the order they were stored, each batch (one store transaction) at the time it was
stored, so buckets close, streaks grow and late articles are ignored as they were when the stream saw them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from stackwatch.signals.conditions import (
    Composite,
    Cooccurrence,
    FirstSeen,
    Quiet,
    Rule,
    Spike,
    Threshold,
    Trend,
)
from stackwatch.signals.counts import DEFAULT_RETENTION, BucketCounts
from stackwatch.signals.indicators import WINDOWS
from stackwatch.signals.messages import Alert, Observation
from stackwatch.signals.rules import RuleEngine

__all__ = ["Rebuilt", "StoredObservation", "lookback", "rebuild", "unrecorded"]


@dataclass(frozen=True, slots=True)
class StoredObservation:
    """An article as the rules stage saw it, and when the store recorded it (its place in the stream)."""

    stored_at: datetime
    observation: Observation


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """The rules agent's state after replaying stored history, and every alert the replay fired."""

    state: dict[str, Any]
    counts: dict[str, list[str]]
    alerts: list[Alert]
    replayed: int


def _rule_lookback(rule: Rule) -> timedelta:
    condition = rule.condition
    width = WINDOWS[condition.window]
    streak = width * (rule.for_count + 1)
    match condition:
        case Spike():
            own = width * (condition.baseline + 1) + streak
        case Trend():
            own = width * 2 * condition.buckets + streak
        case Quiet():
            own = condition.after + streak
        case FirstSeen():
            own = timedelta(days=condition.days + 1)
        case Threshold() | Composite() | Cooccurrence():
            own = streak
    return own + rule.cooldown


def lookback(rules: Iterable[Rule], *, floor: timedelta = DEFAULT_RETENTION) -> timedelta:
    """How far back in event time the replay must start for every rule to get its state back: the buckets a
    rule reads (baselines, trends, streaks), a first-seen rule's days, a quiet rule's gap, plus its cooldown;
    never less than ``floor`` (the stream's own bucket memory).

    >>> lookback([Rule("r", Spike("capex", window="1h", baseline=24))], floor=timedelta(0))
    datetime.timedelta(days=1, seconds=7200)
    """
    return max([floor, *(_rule_lookback(rule) for rule in rules)])


def rebuild(
    engine: RuleEngine, history: Iterable[StoredObservation], *, retention: timedelta = DEFAULT_RETENTION
) -> Rebuilt:
    """Replay ``history`` (in stored order) through ``engine`` from an empty state, as the rules agent would
    have evaluated it: one batch per store transaction, judged at the time it was stored."""
    state: dict[str, Any] = {}
    table: dict[str, list[str]] = {}
    counts = BucketCounts(table, retention)
    alerts: list[Alert] = []
    replayed = 0
    last: datetime | None = None
    for stored_at, batch in groupby(history, key=lambda item: item.stored_at):
        observations = [item.observation for item in batch]
        replayed += len(observations)
        alerts += engine.evaluate(state, counts, observations, stored_at).alerts
        last = stored_at
    if last is not None:
        counts.sweep(last)
    return Rebuilt(state, table, alerts, replayed)


def unrecorded(alerts: Sequence[Alert], recorded: Mapping[tuple[str, str], datetime], known: set[str]) -> list[Alert]:
    """The replayed alerts the store never received: not stored by id, and no older than the newest alert it holds
    for the same rule and dedup key. Those were lost in flight (a crash between the rules and the store); older ones
    the stream judged differently (e.g. in another arrival order), and a restart must not page about them."""
    missing: list[Alert] = []
    for alert in alerts:
        latest = recorded.get((alert.rule, alert.dedup_key))
        if alert.id in known or (latest is not None and alert.bucket_start < latest):
            continue
        missing.append(alert)
    return missing
