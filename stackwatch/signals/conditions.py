"""What an alert rule watches (its condition) and how it alerts (:class:`Rule`): pure values.

    rule = Rule("capex-surge", Threshold("capex", threshold=5), severity="critical", cooldown=timedelta(hours=6))
    rule = Rule("nvda-decoupling", Trend("decoupling", entity="NVIDIA", threshold=0.5))  # momentum, one entity
    rule.condition.series(update)     # "capex|1h" when the update is the series it reads, else None
    rule.judges_early                 # True: a rising count can fire as soon as it holds

A threshold, spike or trend reads one indicator of one :class:`Scope` (a dynamic, all articles, and optionally
one entity or one source), with the store's definitions: the measures of :func:`~stackwatch.signals.indicators.
measures` and the EWMA signals of :func:`~stackwatch.signals.baselines.baselines`. The engine that applies rules
to the stream is :mod:`stackwatch.signals.rules`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any, ClassVar, Protocol

from stackwatch.signals.alerting import compile_pattern
from stackwatch.signals.baselines import BaselinePoint
from stackwatch.signals.composite import CompositeIndex
from stackwatch.signals.entity_rules import cooccurs, names
from stackwatch.signals.indicators import ALL, MEASURES, SIGNALS
from stackwatch.signals.messages import IndicatorUpdate, Observation

__all__ = [
    "COOCCURRENCE_MEASURES",
    "OPERATORS",
    "RISING_MEASURES",
    "SIGNAL_VALUES",
    "Composite",
    "Condition",
    "Cooccurrence",
    "EntitySetScope",
    "FirstSeen",
    "Quiet",
    "Rule",
    "RuleCondition",
    "Scope",
    "SeriesCondition",
    "Spike",
    "StoryReach",
    "Threshold",
    "Trend",
]

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
_RISING = frozenset({">", ">="})
RISING_MEASURES = frozenset({"article_count", "story_count", "source_count", "score_sum", "novelty"})
"""Measures that only grow while their bucket fills (a share does not: every other article grows its divisor)."""

SIGNAL_VALUES: dict[str, Callable[[BaselinePoint], float]] = {
    "ewma_mean": lambda point: point.mean,
    "ewma_dev": lambda point: point.deviation,
    "zscore": lambda point: point.zscore,
    "momentum": lambda point: point.momentum,
}
"""The store's signal indicators, each read off the bucket's :class:`BaselinePoint` as the store writes it."""
assert tuple(SIGNAL_VALUES) == SIGNALS  # one list of signals: the store's


@dataclass(frozen=True, slots=True)
class Scope:
    """Which articles a series counts: those of ``dynamic`` (``*``: all), and of those, the ones naming ``entity``
    or from ``source`` (``*``: any). The store keeps the same scopes (:mod:`stackwatch.signals.indicators`).

    >>> Scope("decoupling", entity="NVIDIA").fields()
    {'dynamic': 'decoupling', 'entity': 'NVIDIA'}
    """

    dynamic: str = ALL
    entity: str = ALL
    source: str = ALL

    @property
    def key(self) -> str:
        """A table key part: no ``|`` (the bucket tables split keys on it)."""
        return "@" + "\x1f".join(part.replace("|", "/") for part in (self.dynamic, self.entity, self.source))

    def matches(self, observed: Observation) -> bool:
        if self.dynamic != ALL and self.dynamic not in observed.labels:
            return False
        if self.source != ALL and observed.source != self.source:
            return False
        folded = self.entity.casefold()
        return self.entity == ALL or any(entity.casefold() == folded for entity in observed.entities)

    def fields(self) -> dict[str, str]:
        """The alert fields (and labels) that name the scope: ``dynamic``, and ``entity`` or ``source`` if set."""
        extra = {name: value for name, value in (("entity", self.entity), ("source", self.source)) if value != ALL}
        return {"dynamic": self.dynamic, **extra}

    def describe(self) -> str:
        """``capex``, ``decoupling articles naming NVIDIA``, ``all articles from reuters``."""
        subject = "all articles" if self.dynamic == ALL else self.dynamic
        if self.entity != ALL:
            return f"{subject if self.dynamic == ALL else subject + ' articles'} naming {self.entity}"
        if self.source != ALL:
            return f"{subject if self.dynamic == ALL else subject + ' articles'} from {self.source}"
        return subject


class Condition(Protocol):
    """What a rule watches: its ``window``, the comparison (``op``, ``threshold``), and its alert fields."""

    op: str
    threshold: float
    window: str

    def fields(self) -> dict[str, str]: ...


Reader = Callable[[Scope, str], float | None]
"""A measure of a scope in the bucket being judged (None: not known here)."""


def _own_series(update: IndicatorUpdate, scope: Scope, measure: str, window: str) -> str | None:
    """The series key if ``update`` is the per-dynamic ``measure`` a condition reads, else None."""
    ok = scope.entity == scope.source == ALL and (update.dynamic, update.indicator, update.window) == (
        scope.dynamic,
        measure,
        window,
    )
    return f"{scope.dynamic}|{window}" if ok else None


class _OneSeries:
    """What the conditions over one scope's series share: the scope, the series key and the alert fields."""

    __slots__ = ()
    dynamic: str
    entity: str
    source: str
    window: str

    @property
    def scope(self) -> Scope:
        return Scope(self.dynamic, self.entity, self.source)

    @property
    def measure(self) -> str:
        """The measure series the value comes from."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """The alert's ``indicator`` field: the store's indicator name."""
        raise NotImplementedError

    def series(self, update: IndicatorUpdate) -> str | None:
        return _own_series(update, self.scope, self.measure, self.window)

    def fields(self) -> dict[str, str]:
        return {**self.scope.fields(), "indicator": self.label, "window": self.window}


class _SignalOfMeasure(_OneSeries):
    """A signal (``SIGNAL``: the store's z-score or momentum) of any measure of one scope."""

    __slots__ = ()
    SIGNAL: ClassVar[str]
    indicator: str

    @property
    def measure(self) -> str:
        return self.indicator

    @property
    def signal(self) -> str:
        return self.SIGNAL

    @property
    def label(self) -> str:
        return self.SIGNAL if self.indicator == "article_count" else f"{self.SIGNAL}({self.indicator})"


@dataclass(frozen=True, slots=True)
class Threshold(_OneSeries):
    """One indicator of one scope in one bucket compared with a value: ``share >= 0.3`` of capex in a 1h bucket,
    ``zscore >= 3`` of decoupling, ``source_count > 5`` of the articles naming Microsoft.

    ``indicator`` is any of the store's: a measure (:data:`~stackwatch.signals.indicators.MEASURES`) or a signal
    of the scope's article count (:data:`~stackwatch.signals.indicators.SIGNALS`); a signal is judged once its
    series has ``warmup`` buckets before the bucket."""

    dynamic: str = ALL
    indicator: str = "article_count"
    window: str = "1h"
    op: str = ">="
    threshold: float = 1.0
    entity: str = ALL
    source: str = ALL
    warmup: int = 24

    @property
    def measure(self) -> str:
        return self.indicator if self.indicator in MEASURES else "article_count"

    @property
    def signal(self) -> str | None:
        """The signal of that series the rule compares, or None when it compares the measure itself."""
        return self.indicator if self.indicator in SIGNALS else None

    @property
    def label(self) -> str:
        return self.indicator


@dataclass(frozen=True, slots=True)
class Spike(_SignalOfMeasure):
    """The bucket's z-score (the store's: against the EWMA baseline before it) of one measure of one scope,
    judged once the series has ``baseline`` buckets before the bucket (its warm-up)."""

    SIGNAL: ClassVar[str] = "zscore"
    dynamic: str = ALL
    indicator: str = "article_count"
    window: str = "1h"
    baseline: int = 24
    op: str = ">="
    threshold: float = 3.0
    entity: str = ALL
    source: str = ALL

    @property
    def warmup(self) -> int:
        return self.baseline


@dataclass(frozen=True, slots=True)
class Trend(_SignalOfMeasure):
    """Momentum (the store's: fast EWMA − slow EWMA, in the measure's unit per bucket; positive: rising) of one
    measure of one scope, judged once the series has ``buckets`` buckets before the bucket (its warm-up)."""

    SIGNAL: ClassVar[str] = "momentum"
    dynamic: str = ALL
    indicator: str = "article_count"
    window: str = "1d"
    buckets: int = 7
    op: str = ">="
    threshold: float = 1.0
    entity: str = ALL
    source: str = ALL

    @property
    def warmup(self) -> int:
        return self.buckets


SeriesCondition = Threshold | Spike | Trend
"""Conditions over one scope's series: the measure of each bucket, or a signal of it."""


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

    @property
    def scopes(self) -> tuple[Scope, ...]:
        return tuple(Scope(dynamic) for dynamic in self.index.weights)

    def series(self, update: IndicatorUpdate) -> str | None:
        ok = update.indicator == self.indicator and update.window == self.window
        return f"{self.name}|{self.window}" if ok and update.dynamic in self.index.weights else None

    def value(self, read: Reader) -> float:
        """The index over the bucket's per-dynamic values (a dynamic with none counts 0)."""
        return self.index.value({scope.dynamic: read(scope, self.indicator) or 0.0 for scope in self.scopes})

    def fields(self) -> dict[str, str]:
        """``dynamics`` and ``weights`` (``capex=2.0,edge=1.0``) name what the index sums, for its evidence."""
        return {
            "dynamic": self.name,
            "indicator": f"index({self.indicator})",
            "window": self.window,
            "dynamics": ",".join(self.index.weights),
            "weights": ",".join(f"{dynamic}={weight!r}" for dynamic, weight in self.index.weights.items()),
        }


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

    def fields(self) -> dict[str, str]:
        if self.source is not None:
            return {"dynamic": self.subject, "indicator": "hours_quiet", "window": self.window, "source": self.source}
        return {"dynamic": self.dynamic, "indicator": "hours_quiet", "window": self.window}


def _tally_name(dynamic: str, entities: Iterable[str], every: bool) -> str:
    names = sorted({entity.casefold().replace("|", "/").replace("#", "/") for entity in entities})
    return f"{dynamic}&{'&'.join(names)}" if every else f"{dynamic}&any({','.join(names)})"


@dataclass(frozen=True, slots=True)
class EntitySetScope(Scope):
    """The articles of ``dynamic`` that name ``entities`` (every one, or any): a co-occurrence's scope, which the
    rules keep members of (:class:`~stackwatch.signals.counts.ScopeFacts`) to count its distinct stories.

    >>> scope = EntitySetScope("exclusivity", entities=("Microsoft", "OpenAI"))
    >>> scope.key, scope.describe()
    ('&exclusivity&microsoft&openai', 'exclusivity articles naming Microsoft and OpenAI')
    """

    entities: tuple[str, ...] = ()
    every: bool = True

    @property
    def key(self) -> str:
        return "&" + _tally_name(self.dynamic, self.entities, self.every)

    def matches(self, observed: Observation) -> bool:
        return cooccurs(observed.labels, observed.entities, self.dynamic, self.entities, every=self.every)

    def fields(self) -> dict[str, str]:
        return {"dynamic": self.dynamic, "entities": (" & " if self.every else " | ").join(self.entities)}

    def describe(self) -> str:
        return f"{self.dynamic} articles naming {(' and ' if self.every else ' or ').join(self.entities)}"


COOCCURRENCE_MEASURES = {"article_count": "cooccurrence", "story_count": "cooccurrence_stories"}
"""What a co-occurrence rule can count, and the ``indicator`` its alerts carry for each."""


@dataclass(frozen=True, slots=True)
class Cooccurrence:
    """Articles (or distinct stories) of ``dynamic`` that name ``entities`` (every one, or any) in one bucket,
    compared with a value.

    Articles: the stream counts matching articles under a series of their own, :attr:`tally`
    (``exclusivity&microsoft``), exactly as it counts a dynamic's articles; the rule then reads that series like a
    threshold. Stories (``indicator="story_count"``): the rules keep the matching articles' stories per bucket, as
    for a threshold rule's scope (:attr:`scope`), so one event covered by three outlets counts once.
    """

    dynamic: str
    entities: tuple[str, ...]
    every: bool = True
    window: str = "1d"
    op: str = ">="
    threshold: float = 1.0
    indicator: str = "article_count"

    def __post_init__(self) -> None:
        if self.indicator not in COOCCURRENCE_MEASURES:
            raise ValueError(f"a co-occurrence counts {' or '.join(COOCCURRENCE_MEASURES)}, not {self.indicator!r}")

    @property
    def tally(self) -> str:
        return _tally_name(self.dynamic, self.entities, self.every)

    @property
    def scope(self) -> EntitySetScope:
        return EntitySetScope(self.dynamic, entities=self.entities, every=self.every)

    @property
    def counts_stories(self) -> bool:
        return self.indicator == "story_count"

    def matches(self, observed: Observation) -> bool:
        return self.scope.matches(observed)

    def series(self, update: IndicatorUpdate) -> str | None:
        return _own_series(update, Scope(self.tally), self.indicator, self.window)

    def fields(self) -> dict[str, str]:
        return {
            "dynamic": self.dynamic,
            "indicator": COOCCURRENCE_MEASURES[self.indicator],
            "window": self.window,
            "entities": self.scope.fields()["entities"],
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

    def fields(self) -> dict[str, str]:
        return {"dynamic": self.dynamic, "indicator": self.indicator, "window": self.window}


@dataclass(frozen=True, slots=True)
class StoryReach:
    """One story (one event, however many outlets report it) reaching ``threshold`` distinct outlets
    (``indicator: source_count``) or articles (``article_count``) among the articles of ``scope``: "more than 5
    outlets on one capex story".

    Judged per article, as the store groups them: it fires once per story, when the story first reaches the value,
    and never resolves. A story is followed for ``days`` after its first article (the longest a story grows:
    reports more than 48 hours apart are not linked)."""

    dynamic: str = ALL
    entity: str = ALL
    indicator: str = "source_count"
    threshold: float = 3.0
    days: int = 3
    window: str = "1d"
    op: str = ">="

    @property
    def scope(self) -> Scope:
        return Scope(self.dynamic, self.entity)

    def series(self, update: IndicatorUpdate) -> str | None:
        return None  # judged on observations, not on indicator updates

    def fields(self) -> dict[str, str]:
        return {**self.scope.fields(), "indicator": self.indicator, "window": self.window}


@dataclass(frozen=True, slots=True)
class Watch:
    """Every new article that matches: of ``dynamic`` (``*``: any article), naming ``entities`` (any one, or every
    one; none: no condition), from ``source``, with a headline matching ``pattern`` (RE2 syntax, case-insensitive;
    empty: any). A watchlist: one alert per article, never resolved; an article published more than ``days``
    before the newest one the rule has matched is old news (a backfill), and sends nothing.

    >>> from datetime import UTC, datetime
    >>> seen = Observation("a1", "wire", datetime(2026, 12, 2, tzinfo=UTC), ("capex",), ("NVIDIA",), title="Gulf AI")
    >>> Watch("capex", ("nvidia", "AMD"), pattern=r"\\bgulf\\b").matches(seen)
    True
    """

    dynamic: str = ALL
    entities: tuple[str, ...] = ()
    every: bool = False
    pattern: str = ""
    source: str | None = None
    days: int = 2
    window: str = "1d"
    op: str = ">="
    threshold: float = 1.0
    indicator: str = "article"

    def matches(self, observed: Observation) -> bool:
        if self.dynamic != ALL and self.dynamic not in observed.labels:
            return False
        if self.source is not None and observed.source != self.source:
            return False
        if self.entities and not names(observed.entities, self.entities, every=self.every):
            return False
        return not self.pattern or headline_pattern(self.pattern).search(observed.title) is not None

    def series(self, update: IndicatorUpdate) -> str | None:
        return None  # judged on observations, not on indicator updates

    def fields(self) -> dict[str, str]:
        return {"dynamic": self.dynamic, "indicator": self.indicator, "window": self.window}


@cache
def headline_pattern(pattern: str) -> Any:
    """A watch rule's ``match``, compiled as a silence's regular expression is (RE2: linear time on any headline,
    bounded memory), case-insensitive; ValueError with RE2's reason for a pattern it refuses."""
    return compile_pattern(f"(?i){pattern}")


RuleCondition = Threshold | Spike | Trend | Composite | Quiet | Cooccurrence | FirstSeen | StoryReach | Watch


_KIND_NAMES: dict[type, str] = {
    Threshold: "threshold",
    Spike: "spike",
    Trend: "trend",
    Composite: "composite",
    Quiet: "silence",
    Cooccurrence: "cooccurrence",
    FirstSeen: "first_seen",
    StoryReach: "story",
    Watch: "watch",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """A condition plus how it alerts. ``for_count``: consecutive buckets it must hold before firing;
    ``cooldown``: at most one alert per dedup key within it; ``dedup``: a template over the alert's fields;
    ``keep_firing``: buckets without the condition before a firing alert resolves."""

    name: str
    condition: RuleCondition
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    for_count: int = 1
    cooldown: timedelta = timedelta(0)
    dedup: str = "{rule}|{dynamic}|{window}"
    webhooks: tuple[str, ...] = ()
    keep_firing: int = 0
    """Buckets a firing alert keeps firing after its condition stops holding (Prometheus' ``keep_firing_for``):
    it resolves only after this many buckets in a row without the condition, so a series at the threshold does
    not flap."""

    @property
    def kind(self) -> str:
        """The rule's ``kind`` as the configuration names it (``silence``, ``first_seen``, ...)."""
        return _KIND_NAMES[type(self.condition)]

    @property
    def judges_early(self) -> bool:
        """A value that only grows within a bucket can fire as soon as it holds (others wait for the bucket): a
        rising measure, and a z-score or momentum of one (ewma_mean and ewma_dev are the baseline *before* the
        bucket: fixed while it fills)."""
        condition = self.condition
        if isinstance(condition, Quiet | FirstSeen | StoryReach | Watch) or condition.op not in _RISING:
            return False
        if isinstance(condition, Composite):
            rising = condition.indicator in RISING_MEASURES
            return rising and all(weight >= 0 for weight in condition.index.weights.values())
        if isinstance(condition, Cooccurrence):
            return True
        return condition.measure in RISING_MEASURES

    @property
    def warmup(self) -> int:
        """Buckets a series must have before a signal of it (z-score, momentum, EWMA) is judged: its first bucket
        is partial and its baseline empty, so judged earlier the first articles would look like a surge."""
        condition = self.condition
        if isinstance(condition, Threshold | Spike | Trend) and condition.signal is not None:
            return condition.warmup
        return 0

    @property
    def judged_per_article(self) -> bool:
        """Fires once per entity, story or article as articles arrive, and never resolves: no series of buckets."""
        return isinstance(self.condition, FirstSeen | StoryReach | Watch)

    @property
    def reads_articles(self) -> bool:
        """Judged on articles, not on stored indicator values: what a backtest replays. Every rule but a quiet
        dynamic: a scope's measures and signals are counted from its articles, as the stream counts them."""
        condition = self.condition
        return not isinstance(condition, Quiet) or condition.source is not None

    def alert_labels(self, fields: Mapping[str, str]) -> dict[str, str]:
        return {"alertname": self.name, "severity": self.severity, "kind": self.kind, **fields, **self.labels}
