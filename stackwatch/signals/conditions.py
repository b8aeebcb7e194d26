"""What an alert rule watches (its :class:`Condition`) and how it alerts (:class:`Rule`): pure values.

    rule = Rule("capex-surge", Threshold("capex", threshold=5), severity="critical", cooldown=timedelta(hours=6))
    rule.condition.series(update)     # "capex|1h" when the update is the series it reads, else None
    rule.judges_early                 # True: a rising count can fire as soon as it holds

The engine that applies rules to the stream is :mod:`stackwatch.signals.rules`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from stackwatch.signals.composite import CompositeIndex
from stackwatch.signals.entity_rules import cooccurs
from stackwatch.signals.indicators import WINDOWS
from stackwatch.signals.messages import IndicatorUpdate, Observation

__all__ = [
    "OPERATORS",
    "Composite",
    "Condition",
    "Cooccurrence",
    "FirstSeen",
    "Quiet",
    "Rule",
    "RuleCondition",
    "Spike",
    "Threshold",
    "Trend",
    "momentum",
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
    """A composite index (a weighted sum of one indicator over several dynamics, ``2*capex + exclusivity``) in
    one bucket, compared with a value."""

    index: CompositeIndex
    window: str = "1h"
    op: str = ">="
    threshold: float = 1.0

    @property
    def name(self) -> str:
        return self.index.name

    @property
    def indicator(self) -> str:
        return self.index.indicator

    def series(self, update: IndicatorUpdate) -> str | None:
        ok = update.indicator == self.indicator and update.window == self.window
        return f"{self.name}|{self.window}" if ok and update.dynamic in self.index.weights else None

    def value(self, history: Callable[[str, str], Mapping[str, float]], update: IndicatorUpdate) -> float:
        bucket = update.bucket_start.isoformat()
        return self.index.value(
            {dynamic: history(self.indicator, dynamic).get(bucket, 0.0) for dynamic in self.index.weights}
        )

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


_KIND_NAMES: dict[type, str] = {
    Threshold: "threshold",
    Spike: "spike",
    Trend: "trend",
    Composite: "composite",
    Quiet: "silence",
    Cooccurrence: "cooccurrence",
    FirstSeen: "first_seen",
}


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
        """The rule's ``kind`` as the configuration names it (``silence``, ``first_seen``, ...)."""
        return _KIND_NAMES[type(self.condition)]

    @property
    def judges_early(self) -> bool:
        """A value that only grows within a bucket can fire as soon as it holds (others wait for the bucket)."""
        condition = self.condition
        if isinstance(condition, Quiet | FirstSeen) or condition.op not in _RISING:
            return False
        return not isinstance(condition, Composite) or all(weight >= 0 for weight in condition.index.weights.values())

    @property
    def warmup(self) -> int:
        """Buckets of event time the stream must have covered before the rule is judged: a spike's baseline, a
        trend's two halves. Judged earlier, a baseline of empty buckets makes the first articles look like a surge."""
        condition = self.condition
        if isinstance(condition, Spike):
            return condition.baseline
        if isinstance(condition, Trend):
            return 2 * condition.buckets - 1
        return 0

    @property
    def reads_articles(self) -> bool:
        """Judged on articles (entities, a source's silence), not on indicator values: what a backtest replays."""
        condition = self.condition
        return isinstance(condition, Cooccurrence | FirstSeen) or (
            isinstance(condition, Quiet) and condition.source is not None
        )

    def alert_labels(self, fields: Mapping[str, str]) -> dict[str, str]:
        return {"alertname": self.name, "severity": self.severity, "kind": self.kind, **fields, **self.labels}
