"""Alert rules and the engine that applies them to indicator updates: pure code, state in a mapping.

A rule names what to watch (a :class:`Condition`) and how to alert (severity, labels, ``for``, cooldown, dedup
key). The :class:`RuleEngine` turns a stream of :class:`IndicatorUpdate` into firing and resolved
:class:`Alert` messages, keeping all of its state in a ``MutableMapping[str, dict]`` of JSON values: a Faust
table in the stream, a plain dict in a backtest, so both fire the same alerts on the same history::

    engine = RuleEngine([Rule("capex-surge", Threshold("capex", value=5))])
    state: dict[str, Any] = {}
    alerts = engine.apply(state, update)            # [] or [Alert(status="firing", ...)]

Time is event time: buckets are evaluations, cooldowns are measured between bucket starts, never wall-clock.
A bucket is judged when a later bucket of the same series arrives (or, for rules whose value only grows within
a bucket, as soon as it holds), so a replay or a redelivered update never fires twice.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from stackwatch.signals.counts import BucketCounts
from stackwatch.signals.entity_rules import cooccurs, first_seen
from stackwatch.signals.indicators import WINDOWS, bucket_start, hits_for
from stackwatch.signals.messages import Alert, DynamicHit, IndicatorUpdate, Observation, parse_time

__all__ = [
    "OPERATORS",
    "Composite",
    "Condition",
    "Cooccurrence",
    "Evaluation",
    "FirstSeen",
    "Quiet",
    "Rule",
    "RuleCondition",
    "RuleEngine",
    "Spike",
    "Threshold",
    "ThresholdRule",
    "Trend",
    "alert_id",
    "momentum",
    "replay",
    "replay_observations",
    "zscore",
]

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
_RISING = frozenset({">", ">="})
HISTORY_BUCKETS = 400
"""Buckets of history kept per series (spike baselines and trends look back at most this far)."""


def alert_id(rule: str, *parts: str) -> str:
    """The same rule tripped by the same thing always yields the same id (replays dedupe downstream)."""
    return "alert_" + hashlib.sha256("|".join((rule, *parts)).encode("utf-8")).hexdigest()[:24]


def zscore(value: float, baseline: Sequence[float], *, min_std: float = 1.0) -> float:
    """How many standard deviations ``value`` sits above the mean of ``baseline`` (std floored at ``min_std``).

    >>> zscore(10, [2, 2, 2, 2])
    8.0
    """
    if not baseline:
        return 0.0
    mean = sum(baseline) / len(baseline)
    std = math.sqrt(sum((item - mean) ** 2 for item in baseline) / len(baseline))
    return (value - mean) / max(std, min_std)


def momentum(values: Sequence[float], buckets: int) -> float:
    """Relative growth of the last ``buckets`` values over the ``buckets`` before them (oldest first).

    >>> momentum([1, 1, 2, 4], 2)
    2.0
    """
    recent = sum(values[-buckets:])
    before = sum(values[-2 * buckets : -buckets]) if len(values) > buckets else 0.0
    return (recent - before) / max(before, 1.0)


class Condition(Protocol):
    """What a rule watches. ``value`` returns the number the rule compares, or None if the update is not its."""

    op: str
    threshold: float
    window: str

    def series(self, update: IndicatorUpdate) -> str | None: ...
    def value(self, history: Callable[[str, str], Mapping[str, float]], update: IndicatorUpdate) -> float: ...
    def fields(self, update: IndicatorUpdate) -> dict[str, str]: ...


def _series_key(indicator: str, dynamic: str, window: str) -> str:
    return f"h|{indicator}|{dynamic}|{window}"


def _window_values(history: Mapping[str, float], end: datetime, window: str, count: int) -> list[float]:
    """The ``count`` bucket values ending at ``end`` (inclusive), oldest first; a bucket with no update is 0."""
    width = WINDOWS[window]
    return [history.get((end - width * back).isoformat(), 0.0) for back in range(count - 1, -1, -1)]


def _own_series(update: IndicatorUpdate, dynamic: str, indicator: str, window: str) -> str | None:
    """The series ``dynamic|window`` if ``update`` is the ``indicator`` a condition reads for it, else None."""
    ok = (update.dynamic, update.indicator, update.window) == (dynamic, indicator, window)
    return f"{dynamic}|{window}" if ok else None


@dataclass(frozen=True, slots=True)
class Threshold:
    """An indicator of a dynamic compared with a value: ``article_count >= 5`` in a 1h bucket."""

    dynamic: str
    indicator: str = "article_count"
    window: str = "1h"
    op: str = ">="
    threshold: float = 1.0

    def series(self, update: IndicatorUpdate) -> str | None:
        return _own_series(update, self.dynamic, self.indicator, self.window)

    def value(self, history: Callable[[str, str], Mapping[str, float]], update: IndicatorUpdate) -> float:
        return update.value

    def fields(self, update: IndicatorUpdate) -> dict[str, str]:
        return {"dynamic": self.dynamic, "indicator": self.indicator, "window": self.window}


@dataclass(frozen=True, slots=True)
class Spike:
    """The bucket's z-score against the ``baseline`` buckets before it (missing buckets count as 0)."""

    dynamic: str
    indicator: str = "article_count"
    window: str = "1h"
    baseline: int = 24
    min_std: float = 1.0
    op: str = ">="
    threshold: float = 3.0

    def series(self, update: IndicatorUpdate) -> str | None:
        return _own_series(update, self.dynamic, self.indicator, self.window)

    def value(self, history: Callable[[str, str], Mapping[str, float]], update: IndicatorUpdate) -> float:
        past = _window_values(
            history(self.indicator, self.dynamic),
            update.bucket_start - WINDOWS[self.window],
            self.window,
            self.baseline,
        )
        return zscore(update.value, past, min_std=self.min_std)

    def fields(self, update: IndicatorUpdate) -> dict[str, str]:
        return {"dynamic": self.dynamic, "indicator": f"zscore({self.indicator})", "window": self.window}


@dataclass(frozen=True, slots=True)
class Trend:
    """Momentum: growth of the last ``buckets`` buckets over the ``buckets`` before them, as a ratio."""

    dynamic: str
    indicator: str = "article_count"
    window: str = "1d"
    buckets: int = 7
    op: str = ">="
    threshold: float = 1.0

    def series(self, update: IndicatorUpdate) -> str | None:
        return _own_series(update, self.dynamic, self.indicator, self.window)

    def value(self, history: Callable[[str, str], Mapping[str, float]], update: IndicatorUpdate) -> float:
        values = _window_values(
            history(self.indicator, self.dynamic), update.bucket_start, self.window, 2 * self.buckets
        )
        return momentum(values, self.buckets)

    def fields(self, update: IndicatorUpdate) -> dict[str, str]:
        return {"dynamic": self.dynamic, "indicator": f"momentum({self.indicator})", "window": self.window}


@dataclass(frozen=True, slots=True)
class Composite:
    """A weighted sum of one indicator over several dynamics in the same bucket: ``2*capex + exclusivity``."""

    name: str
    weights: tuple[tuple[str, float], ...]
    indicator: str = "article_count"
    window: str = "1h"
    op: str = ">="
    threshold: float = 1.0

    def series(self, update: IndicatorUpdate) -> str | None:
        ok = update.indicator == self.indicator and update.window == self.window
        return f"{self.name}|{self.window}" if ok and update.dynamic in dict(self.weights) else None

    def value(self, history: Callable[[str, str], Mapping[str, float]], update: IndicatorUpdate) -> float:
        bucket = update.bucket_start.isoformat()
        return sum(weight * history(self.indicator, dynamic).get(bucket, 0.0) for dynamic, weight in self.weights)

    def fields(self, update: IndicatorUpdate) -> dict[str, str]:
        return {"dynamic": self.name, "indicator": f"index({self.indicator})", "window": self.window}


@dataclass(frozen=True, slots=True)
class Quiet:
    """A dynamic (or, with ``source``, a source) has had no article for ``after`` (a coverage gap); judged each
    time the stream's clock moves."""

    dynamic: str
    after: timedelta
    window: str = "1h"
    op: str = ">="
    indicator: str = "article_count"
    source: str | None = None

    @property
    def threshold(self) -> float:
        return self.after.total_seconds() / 3600.0

    @property
    def subject(self) -> str:
        """Its key among what the clock has seen: the dynamic, or ``source:NAME``."""
        return self.dynamic if self.source is None else f"source:{self.source}"

    def series(self, update: IndicatorUpdate) -> str | None:
        return None  # judged on clock ticks, not on updates

    def value(self, history: Callable[[str, str], Mapping[str, float]], update: IndicatorUpdate) -> float:
        return 0.0

    def fields(self, update: IndicatorUpdate) -> dict[str, str]:
        if self.source is not None:
            return {"dynamic": self.subject, "indicator": "hours_quiet", "window": self.window, "source": self.source}
        return {"dynamic": self.dynamic, "indicator": "hours_quiet", "window": self.window}


def _tally_name(dynamic: str, entities: Iterable[str], every: bool) -> str:
    names = sorted({entity.casefold().replace("|", "/").replace("#", "/") for entity in entities})
    return f"{dynamic}&{'&'.join(names)}" if every else f"{dynamic}&any({','.join(names)})"


@dataclass(frozen=True, slots=True)
class Cooccurrence:
    """Articles of ``dynamic`` that name ``entities`` (every one, or any) in one bucket, compared with a value.

    The stream counts matching articles under a series of their own, :attr:`tally` (``exclusivity&microsoft``),
    exactly as it counts a dynamic's articles; the rule then reads that series like a threshold.
    """

    dynamic: str
    entities: tuple[str, ...]
    every: bool = True
    window: str = "1d"
    op: str = ">="
    threshold: float = 1.0
    indicator: str = "article_count"

    @property
    def tally(self) -> str:
        return _tally_name(self.dynamic, self.entities, self.every)

    def matches(self, observed: Observation) -> bool:
        return cooccurs(observed.labels, observed.entities, self.dynamic, self.entities, every=self.every)

    def series(self, update: IndicatorUpdate) -> str | None:
        return _own_series(update, self.tally, self.indicator, self.window)

    def value(self, history: Callable[[str, str], Mapping[str, float]], update: IndicatorUpdate) -> float:
        return update.value

    def fields(self, update: IndicatorUpdate) -> dict[str, str]:
        return {
            "dynamic": self.dynamic,
            "indicator": "cooccurrence",
            "window": self.window,
            "entities": (" & " if self.every else " | ").join(self.entities),
        }


@dataclass(frozen=True, slots=True)
class FirstSeen:
    """An entity (any, or one of ``entities``) named in an article of ``dynamic`` for the first time in ``days``.

    Judged per article, not per bucket. It stays unarmed until the stream has covered ``days`` days of event time,
    so a fresh install (or a new rule) does not page about every entity it meets on day one.
    """

    dynamic: str
    entities: tuple[str, ...] = ()
    days: int = 30
    window: str = "1d"
    op: str = ">="
    threshold: float = 1.0
    indicator: str = "first_seen"

    def watches(self, entity: str) -> bool:
        return not self.entities or entity.casefold() in {name.casefold() for name in self.entities}

    def series(self, update: IndicatorUpdate) -> str | None:
        return None  # judged on observations, not on indicator updates

    def value(self, history: Callable[[str, str], Mapping[str, float]], update: IndicatorUpdate) -> float:
        return 0.0

    def fields(self, update: IndicatorUpdate) -> dict[str, str]:
        return {"dynamic": self.dynamic, "indicator": self.indicator, "window": self.window}


RuleCondition = Threshold | Spike | Trend | Composite | Quiet | Cooccurrence | FirstSeen


@dataclass(frozen=True, slots=True)
class Rule:
    """A condition plus how it alerts. ``for_count``: consecutive buckets it must hold before firing;
    ``cooldown``: at most one alert per dedup key within it; ``dedup``: a template over the alert's fields."""

    name: str
    condition: RuleCondition
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    for_count: int = 1
    cooldown: timedelta = timedelta(0)
    dedup: str = "{rule}|{dynamic}|{window}"
    webhooks: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return type(self.condition).__name__.lower()

    @property
    def judges_early(self) -> bool:
        """A value that only grows within a bucket can fire as soon as it holds (others wait for the bucket)."""
        condition = self.condition
        if isinstance(condition, Quiet | FirstSeen) or condition.op not in _RISING:
            return False
        return not isinstance(condition, Composite) or all(weight >= 0 for _, weight in condition.weights)

    @property
    def reads_articles(self) -> bool:
        """Judged on articles (entities, a source's silence), not on indicator values: what a backtest replays."""
        condition = self.condition
        return isinstance(condition, Cooccurrence | FirstSeen) or (
            isinstance(condition, Quiet) and condition.source is not None
        )

    def alert_labels(self, fields: Mapping[str, str]) -> dict[str, str]:
        return {"alertname": self.name, "severity": self.severity, "kind": self.kind, **fields, **self.labels}


Router = Callable[[Mapping[str, str]], Iterable[str]]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What a batch of observations produced: the per-dynamic counts to publish, and the alerts."""

    updates: list[IndicatorUpdate]
    alerts: list[Alert]


@dataclass
class RuleEngine:
    """Applies rules to indicator updates; every bit of state lives in the mapping passed to :meth:`apply`.

    Keys in the state: ``h|indicator|dynamic|window`` (bucket values), ``r|rule|dedup`` (one rule's series),
    ``c|window`` (the stream's clock and when each dynamic was last seen, for :class:`Quiet` rules).
    """

    rules: Sequence[Rule]
    router: Router = field(default=lambda labels: ())

    def apply(self, state: MutableMapping[str, Any], update: IndicatorUpdate) -> list[Alert]:
        """The alerts ``update`` fires or resolves (usually none). Only per-dynamic totals are rule input."""
        if getattr(update, "entity", "*") != "*" or getattr(update, "source", "*") != "*" or update.dynamic == "*":
            return []
        alerts: list[Alert] = []
        self._remember(state, update)
        alerts += self._tick(state, update)

        def history(indicator: str, dynamic: str) -> Mapping[str, float]:
            return state.get(_series_key(indicator, dynamic, update.window)) or {}

        for rule in self.rules:
            series = rule.condition.series(update)
            if series is None:
                continue
            fields = rule.condition.fields(update)
            value = rule.condition.value(history, update)
            alerts += self._observe(state, rule, fields, update.bucket_start, value)
        return alerts

    def evaluate(
        self, state: MutableMapping[str, Any], counts: BucketCounts, batch: Sequence[Observation], now: datetime
    ) -> Evaluation:
        """One batch of observations through every rule: what the rules agent does with each record.

        Counts the batch's articles per dynamic and bucket (and per co-occurrence series), applies the counts in
        the order their buckets first appear, and judges first-seen entities and quiet sources on the way.
        """
        alerts = [alert for observed in batch for alert in self.observe(state, observed)]
        updates = counts.add((hit for observed in batch for hit in hits_for(observed)), now)
        for update in updates:
            alerts += self.apply(state, update)
        for update in counts.add((hit for observed in batch for hit in self.tallies(observed)), now):
            alerts += self.apply(state, update)  # co-occurrence series: the rules' own, not published
        return Evaluation(updates, alerts)

    def tallies(self, observed: Observation) -> list[DynamicHit]:
        """The hits ``observed`` adds to the series co-occurrence rules count (beyond its dynamics' own)."""
        return [
            DynamicHit(
                rule.condition.tally,
                rule.condition.window,
                bucket_start(observed.published_at, rule.condition.window),
                observed.article_id,
            )
            for rule in self.rules
            if isinstance(rule.condition, Cooccurrence) and rule.condition.matches(observed)
        ]

    def observe(self, state: MutableMapping[str, Any], observed: Observation) -> list[Alert]:
        """First-seen alerts for one article. State key ``f|rule``: the first day watched and, per
        ``dynamic|entity``, the last day seen."""
        self._seen_source(state, observed)
        alerts: list[Alert] = []
        day = observed.published_at.date().isoformat()
        for rule in self.rules:
            condition = rule.condition
            if not isinstance(condition, FirstSeen) or condition.dynamic not in observed.labels:
                continue
            record = dict(state.get(f"f|{rule.name}") or {"since": day, "last": {}})
            record["since"] = min(record["since"], day)
            armed = date.fromisoformat(day) - date.fromisoformat(record["since"]) >= timedelta(days=condition.days)
            last = dict(record["last"])
            for entity in observed.entities:
                if not condition.watches(entity):
                    continue
                if armed and first_seen(entity, condition.dynamic, day, last, days=condition.days):
                    alerts.append(self._first_seen_alert(rule, condition, entity, observed))
                key = f"{condition.dynamic}|{entity.casefold()}"
                last[key] = max(last.get(key, day), day)
            record["last"] = last
            state[f"f|{rule.name}"] = record
        return alerts

    def _seen_source(self, state: MutableMapping[str, Any], observed: Observation) -> None:
        """Note the article's bucket as its source's last, for the Quiet rules that watch a source."""
        subject = f"source:{observed.source}"
        watching = [rule.condition for rule in self.rules if isinstance(rule.condition, Quiet)]
        for window in {quiet.window for quiet in watching if quiet.subject == subject}:
            key = f"c|{window}"
            clock = dict(state.get(key) or {"bucket": None, "seen": {}})
            bucket = bucket_start(observed.published_at, window).isoformat()
            if bucket > clock["seen"].get(subject, ""):
                clock["seen"] = {**clock["seen"], subject: bucket}
                state[key] = clock

    def _first_seen_alert(self, rule: Rule, condition: FirstSeen, entity: str, observed: Observation) -> Alert:
        day = bucket_start(observed.published_at, "1d")
        fields = {"dynamic": condition.dynamic, "indicator": condition.indicator, "window": "1d", "entity": entity}
        labels = rule.alert_labels(fields)
        dedup = self.dedup_key(rule, fields)
        return Alert(
            id=alert_id(rule.name, dedup, entity.casefold(), day.isoformat()),
            rule=rule.name,
            severity=rule.severity,
            dynamic=condition.dynamic,
            indicator=condition.indicator,
            window="1d",
            bucket_start=day,
            value=1.0,
            threshold=1.0,
            message=f"{entity} appears in {condition.dynamic} for the first time in {condition.days} days",
            webhooks=self._webhooks(rule, labels),
            fired_at=observed.published_at,
            kind=rule.kind,
            dedup_key=dedup,
            labels=labels,
            values={"first_seen": 1.0},
        )

    # -- history and clock -------------------------------------------------------------------------------------

    def _remember(self, state: MutableMapping[str, Any], update: IndicatorUpdate) -> None:
        key = _series_key(update.indicator, update.dynamic, update.window)
        values = dict(state.get(key) or {})
        values[update.bucket_start.isoformat()] = update.value
        if len(values) > HISTORY_BUCKETS:
            values = dict(sorted(values.items())[-HISTORY_BUCKETS:])
        state[key] = values

    def _tick(self, state: MutableMapping[str, Any], update: IndicatorUpdate) -> list[Alert]:
        """Advance the window's clock; when it moves past a bucket, judge the Quiet rules at that bucket."""
        key = f"c|{update.window}"
        clock = dict(state.get(key) or {"bucket": None, "seen": {}})
        seen = dict(clock["seen"])
        alerts: list[Alert] = []
        bucket = update.bucket_start.isoformat()
        if clock["bucket"] is not None and bucket > clock["bucket"]:
            judged = parse_time(clock["bucket"])
            for rule in self.rules:
                quiet = rule.condition
                if not isinstance(quiet, Quiet) or quiet.window != update.window:
                    continue
                last = seen.get(quiet.subject)
                hours = (judged - parse_time(last)).total_seconds() / 3600.0 if last else math.inf
                if last is None and not seen:
                    continue
                fields = quiet.fields(update)
                alerts += self._verdict(state, rule, fields, judged, hours >= quiet.threshold, hours)
        if clock["bucket"] is None or bucket > clock["bucket"]:
            clock["bucket"] = bucket
        if update.indicator == "article_count" and update.value > 0 and bucket > seen.get(update.dynamic, ""):
            seen[update.dynamic] = bucket
        clock["seen"] = seen
        state[key] = clock
        return alerts

    # -- one rule's series -------------------------------------------------------------------------------------

    def _observe(
        self, state: MutableMapping[str, Any], rule: Rule, fields: dict[str, str], bucket: datetime, value: float
    ) -> list[Alert]:
        key = self._key(rule, fields)
        series = dict(state.get(key) or _fresh())
        alerts: list[Alert] = []
        current = series["bucket"]
        stamp = bucket.isoformat()
        if current is not None and stamp < current:
            return []  # a late update for a bucket already judged
        if current is not None and stamp > current:
            state[key] = series
            alerts += self._close(state, rule, fields, parse_time(current), bucket)
            series = dict(state[key])
        if series["bucket"] != stamp:
            series.update(bucket=stamp, held=False, value=None)
        series["value"] = value
        state[key] = series
        if rule.judges_early and not series["held"] and OPERATORS[rule.condition.op](value, rule.condition.threshold):
            series["held"] = True
            state[key] = series
            alerts += self._verdict(state, rule, fields, bucket, True, value)
        return alerts

    def _close(
        self, state: MutableMapping[str, Any], rule: Rule, fields: dict[str, str], closed: datetime, following: datetime
    ) -> list[Alert]:
        """Judge the bucket ``closed`` now that ``following`` has begun (and any empty buckets between)."""
        series = state[self._key(rule, fields)]
        alerts: list[Alert] = []
        if rule.judges_early:
            if not series["held"]:
                alerts += self._verdict(state, rule, fields, closed, False, series["value"])
        else:
            holds = OPERATORS[rule.condition.op](series["value"], rule.condition.threshold)
            alerts += self._verdict(state, rule, fields, closed, holds, series["value"])
        gap = closed + WINDOWS[rule.condition.window]
        if gap < following and isinstance(rule.condition, Threshold):
            # Buckets with no update had the value 0; one verdict stands for the whole gap.
            alerts += self._verdict(
                state, rule, fields, gap, OPERATORS[rule.condition.op](0.0, rule.condition.threshold), 0.0
            )
        elif gap < following:
            alerts += self._verdict(state, rule, fields, gap, False, 0.0)
        return alerts

    def _verdict(
        self,
        state: MutableMapping[str, Any],
        rule: Rule,
        fields: dict[str, str],
        bucket: datetime,
        holds: bool,
        value: float | None,
    ) -> list[Alert]:
        key = self._key(rule, fields)
        series = dict(state.get(key) or _fresh())
        alerts: list[Alert] = []
        if holds:
            series["streak"] += 1
            if series["streak"] >= rule.for_count and not series["firing"]:
                series["firing"] = True
                last = series["notified"]
                if last is not None and bucket - parse_time(last) < rule.cooldown:
                    series["muted"] = True  # within the cooldown: neither this alert nor its resolution is sent
                else:
                    series.update(muted=False, notified=bucket.isoformat(), fired=bucket.isoformat())
                    alerts.append(self._alert(rule, fields, key, bucket, value, "firing", series["fired"]))
        else:
            series["streak"] = 0
            if series["firing"]:
                series["firing"] = False
                if not series["muted"]:
                    alerts.append(self._alert(rule, fields, key, bucket, value, "resolved", series["fired"]))
        state[key] = series
        return alerts

    def _key(self, rule: Rule, fields: Mapping[str, str]) -> str:
        return f"r|{rule.name}|{self.dedup_key(rule, fields)}"

    @staticmethod
    def dedup_key(rule: Rule, fields: Mapping[str, str]) -> str:
        return rule.dedup.format(rule=rule.name, severity=rule.severity, **fields)

    def _webhooks(self, rule: Rule, labels: Mapping[str, str]) -> tuple[str, ...]:
        """The rule's own webhooks, then those its labels route to, each once."""
        return tuple(dict.fromkeys([*rule.webhooks, *self.router(labels)]))

    def _alert(
        self,
        rule: Rule,
        fields: dict[str, str],
        key: str,
        bucket: datetime,
        value: float | None,
        status: str,
        fired: str,
    ) -> Alert:
        dedup = key.split("|", 2)[2]
        condition = rule.condition
        labels = rule.alert_labels(fields)
        shown = "n/a" if value is None else f"{value:g}"
        verb = "resolved:" if status == "resolved" else ""
        message = (
            f"{verb}{' ' if verb else ''}{fields['dynamic']} {fields['indicator']} {shown} {condition.op} "
            f"{condition.threshold:g} in the {condition.window} bucket starting {bucket.isoformat()}"
        )
        return Alert(
            id=alert_id(rule.name, dedup, fired, *(("resolved",) if status == "resolved" else ())),
            rule=rule.name,
            severity=rule.severity,
            dynamic=fields["dynamic"],
            indicator=fields["indicator"],
            window=condition.window,
            bucket_start=bucket,
            value=0.0 if value is None or math.isinf(value) else float(value),
            threshold=float(condition.threshold),
            message=message,
            webhooks=self._webhooks(rule, labels),
            fired_at=bucket,
            status=status,
            kind=rule.kind,
            dedup_key=dedup,
            labels=labels,
            values={fields["indicator"]: 0.0 if value is None or math.isinf(value) else float(value)},
        )


def _fresh() -> dict[str, Any]:
    return {
        "bucket": None,
        "held": False,
        "value": None,
        "streak": 0,
        "firing": False,
        "muted": False,
        "notified": None,
        "fired": None,
    }


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """The skeleton's stateless threshold rule: fire once per bucket when ``indicator op value`` holds.

    Kept for callers that want a one-shot check; the stream uses :class:`RuleEngine`.
    """

    name: str
    dynamic: str
    indicator: str
    window: str
    op: str
    value: float
    severity: str
    webhooks: tuple[str, ...]

    def evaluate(self, update: IndicatorUpdate) -> Alert | None:
        if (update.dynamic, update.indicator, update.window) != (self.dynamic, self.indicator, self.window):
            return None
        if not OPERATORS[self.op](update.value, self.value):
            return None
        bucket = update.bucket_start.isoformat()
        return Alert(
            id=alert_id(self.name, self.dynamic, self.window, bucket),
            rule=self.name,
            severity=self.severity,
            dynamic=self.dynamic,
            indicator=self.indicator,
            window=self.window,
            bucket_start=update.bucket_start,
            value=update.value,
            threshold=self.value,
            message=(
                f"{self.dynamic} {self.indicator} {update.value:g} {self.op} {self.value:g} "
                f"in the {self.window} bucket starting {bucket}"
            ),
            webhooks=self.webhooks,
        )


def replay_observations(engine: RuleEngine, observations: Iterable[Observation]) -> list[Alert]:
    """Every alert ``engine`` fires on stored articles, one at a time, exactly as the rules agent would."""
    state: dict[str, Any] = {}
    counts = BucketCounts({}, retention=timedelta(days=36500))
    alerts: list[Alert] = []
    for observed in observations:
        alerts += engine.evaluate(state, counts, [observed], observed.published_at).alerts
    return alerts


def replay(engine: RuleEngine, updates: Iterable[IndicatorUpdate]) -> list[Alert]:
    """Every alert ``engine`` fires on ``updates`` from a fresh state: a backtest, the same code as the stream."""
    state: dict[str, Any] = {}
    return [alert for update in updates for alert in engine.apply(state, update)]
