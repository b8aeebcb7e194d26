"""Rebuilding the rules' state from stored articles: what a restart does when the broker kept nothing.

With the embedded (memory-only) broker the rules agent's state (bucket counts, ``for`` streaks, firing and resolved
series, cooldowns, first-seen arming, spike and trend baselines, quiet clocks) would die with the process. Instead
it is derived again at start from the articles the store holds, by the same engine code the stream and
``rules backtest`` run, over the stretch of event time the configured rules look back::

    since = utcnow() - lookback(engine.rules)
    seed = seeds(engine, stored_baselines_before(since))   # EWMA signals go on from the store's, not from zero
    rebuilt = rebuild(engine, stored_history_since(since), retention=timedelta(days=3), seed=seed)
    state, counts = rebuilt.state, rebuilt.counts      # the agent goes on from these
    missing = unrecorded(rebuilt.alerts, recorded)      # alerts lost in flight at the crash: send them now
    reconcile(state, [*recorded_notices, *map(Notice.of, missing)])   # what receivers were told wins

Articles are replayed in the order they were stored, each batch (one store transaction) at the time it was
stored, so buckets close, streaks grow and late articles are ignored much as they were when the stream saw them.
Much, not exactly: the replay sees each article's story as stored now, not as it was when the stream judged it,
and a bucket judged before its late articles arrived can be judged otherwise by the replay. What the
receivers were told is recorded, though, so :func:`reconcile` makes each series' firing state agree with the alerts
the store holds: a series whose firing was sent stays firing (no second page, and its resolution keeps the id of
that firing), and one whose resolution was sent is not firing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, assert_never

from stackwatch.signals.conditions import (
    Composite,
    Cooccurrence,
    FirstSeen,
    Quiet,
    Rule,
    Spike,
    StoryReach,
    Threshold,
    Trend,
    Watch,
)
from stackwatch.signals.counts import DEFAULT_RETENTION, BucketCounts
from stackwatch.signals.indicators import ALL, WINDOWS, bucket_start
from stackwatch.signals.messages import Alert, Observation
from stackwatch.signals.rules import RuleEngine, fresh_series, signal_key

__all__ = [
    "Notice",
    "Rebuilt",
    "StoredBaseline",
    "StoredObservation",
    "baselines_wanted",
    "lookback",
    "open_since",
    "rebuild",
    "reconcile",
    "seeds",
    "series_notices",
    "unrecorded",
]


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
    streak = width * (rule.for_count + 1 + rule.keep_firing)
    match condition:
        case Spike():
            own = width * (condition.baseline + 1) + streak
        case Trend():
            own = width * 2 * condition.buckets + streak
        case Quiet():
            own = condition.after + streak
        case FirstSeen() | StoryReach():
            own = timedelta(days=condition.days + 1)
        case Threshold() | Composite() | Cooccurrence():
            own = streak
        case Watch():
            own = width  # its one state, the newest match, is of the last articles; older ones are stored alerts
        case _:
            assert_never(condition)
    return own + rule.cooldown


def lookback(rules: Iterable[Rule], *, floor: timedelta = DEFAULT_RETENTION) -> timedelta:
    """How far back in event time the replay must start for every rule to get its state back: the buckets a
    rule reads (baselines, trends, streaks), a first-seen rule's days, a quiet rule's gap, plus its cooldown;
    never less than ``floor`` (the stream's own bucket memory).

    >>> lookback([Rule("r", Spike("capex", window="1h", baseline=24))], floor=timedelta(0))
    datetime.timedelta(days=1, seconds=10800)
    """
    return max([floor, *(_rule_lookback(rule) for rule in rules)])


@dataclass(frozen=True, slots=True)
class StoredBaseline:
    """The store's EWMA state of a dynamic's ``article_count`` series at its last bucket before the replay."""

    bucket_start: datetime
    state: tuple[float, float, float, float]
    """Mean, variance, fast and slow EWMAs after that bucket (:class:`~stackwatch.signals.baselines.BaselineState`)."""
    buckets: int
    """Buckets folded into it, from the series' first."""
    following: float
    """The stored count of the bucket after it (0 when none is stored)."""


def _seedable(engine: RuleEngine) -> list[tuple[str, Threshold | Spike | Trend]]:
    """The rules judging a signal (z-score, momentum) of a dynamic's article count: the series the store keeps
    EWMA state for."""
    found: list[tuple[str, Threshold | Spike | Trend]] = []
    for rule in engine.rules:
        condition = rule.condition
        if not isinstance(condition, Threshold | Spike | Trend) or condition.signal is None:
            continue
        scope = condition.scope
        if condition.measure == "article_count" and scope.entity == ALL and scope.source == ALL:
            found.append((rule.name, condition))
    return found


def baselines_wanted(engine: RuleEngine, since: datetime) -> list[tuple[str, str, datetime]]:
    """(dynamic, window, before) of each series :func:`seeds` needs: its last stored state before the bucket
    preceding the replay's first, so the replay folds that bucket itself."""
    wanted = set()
    for _, condition in _seedable(engine):
        window = WINDOWS[condition.window]
        wanted.add((condition.scope.dynamic, condition.window, bucket_start(since, condition.window) - window))
    return sorted(wanted)


def seeds(engine: RuleEngine, stored: Mapping[tuple[str, str], StoredBaseline]) -> dict[str, Any]:
    """The engine's state for its signal series as the store's EWMA left them before the replay (keyed by
    (dynamic, window), as :func:`baselines_wanted` asks). Without it a replay starts each EWMA from zero at the
    replay's start, and the z-scores it judges after a restart differ from the stream's and the store's."""
    state: dict[str, Any] = {}
    for name, condition in _seedable(engine):
        found = stored.get((condition.scope.dynamic, condition.window))
        if found is None:
            continue
        following = found.bucket_start + WINDOWS[condition.window]
        state[signal_key(name, condition)] = {
            "open": following.isoformat(),
            "value": found.following,
            "state": list(found.state),
            "count": found.buckets,
        }
    return state


def rebuild(
    engine: RuleEngine,
    history: Iterable[StoredObservation],
    *,
    retention: timedelta = DEFAULT_RETENTION,
    seed: Mapping[str, Any] | None = None,
) -> Rebuilt:
    """Replay ``history`` (in stored order) through ``engine`` from ``seed`` (else an empty state), as the rules
    agent would have evaluated it: one batch per store transaction, judged at the time it was stored."""
    state: dict[str, Any] = dict(seed or {})
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


@dataclass(frozen=True, slots=True)
class Notice:
    """One alert the receivers were sent (or are being sent): its rule series, bucket and status."""

    rule: str
    dedup_key: str
    bucket_start: datetime
    status: str

    @classmethod
    def of(cls, alert: Alert) -> Notice:
        return cls(alert.rule, alert.dedup_key, alert.bucket_start, alert.status)


def _newest(notices: Iterable[Notice]) -> dict[tuple[str, str], Notice]:
    """Each rule series' (rule, dedup key) newest notice, by bucket."""
    newest: dict[tuple[str, str], Notice] = {}
    for notice in notices:
        name = (notice.rule, notice.dedup_key)
        if name not in newest or notice.bucket_start > newest[name].bucket_start:
            newest[name] = notice
    return newest


def open_since(notices: Iterable[Notice]) -> datetime | None:
    """The oldest bucket of a series whose newest notice is a firing: its state must be replayed from there."""
    return min((notice.bucket_start for notice in _newest(notices).values() if notice.status == "firing"), default=None)


def series_notices(engine: RuleEngine, notices: Iterable[Notice]) -> list[Notice]:
    """The notices of the engine's rules judged per bucket, whose series fire and resolve; first-seen and story
    alerts fire once per entity or story and never resolve, so they hold no series to reconcile or replay."""
    per_bucket = {rule.name for rule in engine.rules if not rule.judged_per_article}
    return [notice for notice in notices if notice.rule in per_bucket]


def reconcile(state: dict[str, Any], notices: Iterable[Notice]) -> list[str]:
    """Make each rule series' firing state in ``state`` agree with the newest of its ``notices``; returns the state
    keys it changed.

    A series whose newest notice is a firing is firing since that bucket and not muted, so it does not fire again
    and its resolution carries that firing's id; one whose newest notice is a resolution is not firing (a firing
    the replay muted within a cooldown was never sent, and is left as it is). Streaks, values and buckets stay as
    the replay left them.

    >>> state = {}
    >>> reconcile(state, [Notice("trend", "capex|1d", datetime(2026, 10, 12), "firing")])
    ['r|trend|capex|1d']
    >>> state["r|trend|capex|1d"]["firing"], state["r|trend|capex|1d"]["fired"]
    (True, '2026-10-12T00:00:00')
    """
    notices = list(notices)
    newest = _newest(notices)
    last_fired = {
        name: notice.bucket_start for name, notice in _newest(n for n in notices if n.status == "firing").items()
    }
    changed: list[str] = []
    for (rule, dedup), notice in newest.items():
        key = f"r|{rule}|{dedup}"
        before = state.get(key) or fresh_series()
        series = dict(before)
        if notice.status == "firing":
            fired = notice.bucket_start.isoformat()
            series.update(firing=True, muted=False, fired=fired, notified=max(series["notified"] or fired, fired))
        elif series["firing"] and not series["muted"]:
            series["firing"] = False
            if fired_last := last_fired.get((rule, dedup)):
                series["notified"] = max(series["notified"] or "", fired_last.isoformat())
        if series != before:
            state[key] = series
            changed.append(key)
    return changed
