"""``webhooks:``, ``rules:`` and ``alerting:`` sections.

A rule is declared once and evaluated by ``signals/rules.py`` (its conditions in ``signals/conditions.py``);
``to_rule()`` builds the pure rule::

    rules:
      - {name: capex-surge, kind: threshold, dynamic: capex, value: 5, severity: critical, for: 2, cooldown: 6h,
         labels: {team: markets}, webhooks: [ops]}
      - {name: decoupling-spike, kind: spike, dynamic: decoupling, baseline: 24, value: 3}
      - {name: capex-share, kind: threshold, dynamic: capex, indicator: share, op: ">", value: 0.3}
      - {name: nvidia-decoupling, kind: trend, dynamic: decoupling, entity: NVIDIA, value: 2}
    alerting:
      group_by: [alertname, dynamic]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 4h
      routes: [{match: {team: markets}, webhooks: [chat]}]
"""

from __future__ import annotations

import binascii
import math
import os
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, HttpUrl, SecretStr, ValidationInfo, model_validator
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from stackwatch.settings.base import Section, parse_duration
from stackwatch.signals.composite import CompositeIndex
from stackwatch.signals.conditions import (
    Composite,
    Cooccurrence,
    FirstSeen,
    Quiet,
    Rule,
    RuleCondition,
    Spike,
    StoryReach,
    Threshold,
    Trend,
    Watch,
    headline_pattern,
)
from stackwatch.signals.indicators import WINDOWS
from stackwatch.signals.source_health import HealthRule

__all__ = [
    "AlertingSettings",
    "CompositeRuleSettings",
    "CooccurrenceRuleSettings",
    "FirstSeenRuleSettings",
    "InhibitSettings",
    "RouteSettings",
    "RuleSettings",
    "SilenceRuleSettings",
    "SourceHealthRuleSettings",
    "SpikeRuleSettings",
    "StoryRuleSettings",
    "ThresholdRuleSettings",
    "TrendRuleSettings",
    "WatchRuleSettings",
    "WebhookSettings",
    "engine_rules",
    "secret_problem",
]

Seconds = Annotated[float, BeforeValidator(parse_duration)]
Cooldown = Annotated[float, BeforeValidator(lambda value: 0.0 if value in (0, "0") else parse_duration(value))]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
LabelName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
Op = Literal[">", ">=", "<", "<=", "=="]
Window = Literal["1h", "1d"]
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_HOW_TO_MAKE_ONE = "whsec_ followed by base64, e.g. the output of: echo whsec_$(openssl rand -base64 32)"


def secret_problem(value: str) -> str | None:
    """Why the Standard Webhooks library cannot sign with ``value``, or None when it can. Never quotes the value.

    The library takes base64, optionally prefixed ``whsec_``; it silently drops characters outside the base64
    alphabet (so ``-``, ``_`` or spaces would sign with another key than the receiver's), which is refused here.

    >>> secret_problem("whsec_c2VjcmV0") is None, secret_problem("abcde")
    (True, 'it is not valid base64 (5 characters: no base64 text has that length)')
    """
    body = value.removeprefix("whsec_")
    if not body:
        return "it is empty"
    if not _BASE64.fullmatch(body):
        return "it is not base64 (only A-Z, a-z, 0-9, + and /, then at most two =)"
    if len(body.rstrip("=")) % 4 == 1:
        return f"it is not valid base64 ({len(body.rstrip('='))} characters: no base64 text has that length)"
    try:
        Webhook(value)
    except (binascii.Error, ValueError, EmptyWebhookSecretError, RuntimeError) as error:
        return f"the Standard Webhooks library refuses it ({type(error).__name__})"
    return None


class WebhookSettings(Section):
    """A webhook target. Its secret is read from the environment variable ``secret_env``, never from the file."""

    name: Name
    url: HttpUrl
    secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    format: Literal["standard", "slack", "discord"] = "standard"
    timeout: Seconds = 10.0
    max_concurrency: int = Field(default=4, ge=1, le=64, description="requests in flight to this target at once")
    secret: SecretStr | None = Field(default=None, exclude=True, description="filled from secret_env at load")

    @model_validator(mode="after")
    def _read_secret(self, info: ValidationInfo) -> WebhookSettings:
        """Fill ``secret`` from ``secret_env`` and check it can sign.

        With ``{"secrets": False}`` in the validation context (commands that send nothing), an unset variable is
        no error and ``secret`` stays None; a variable that is set is still read and checked.
        """
        if self.secret is not None:
            problem = secret_problem(self.secret.get_secret_value())
            if problem:
                raise ValueError(f"secret: not a Standard Webhooks secret: {problem}; expected {_HOW_TO_MAKE_ONE}")
            return self
        if self.secret_env is None:
            return self
        context = info.context or {}
        value = context.get("environ", os.environ).get(self.secret_env)
        if not value:
            if not context.get("secrets", True):
                return self
            raise ValueError(f"secret_env: environment variable {self.secret_env} (named by secret_env) is not set")
        problem = secret_problem(value)
        if problem:
            raise ValueError(
                f"secret_env: environment variable {self.secret_env} does not hold a Standard Webhooks secret: "
                f"{problem}; expected {_HOW_TO_MAKE_ONE}"
            )
        object.__setattr__(self, "secret", SecretStr(value))
        return self


class _RuleBase(Section):
    name: Name
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[LabelName, str] = {}
    for_: int = Field(default=1, ge=1, le=1000, alias="for", description="consecutive buckets it must hold")
    cooldown: Cooldown = 0.0
    keep_firing_for: Cooldown = 0.0
    dedup: str = Field(default="{rule}|{dynamic}|{window}", description="template over rule, dynamic, window")
    webhooks: list[str] = []

    def referenced_dynamics(self) -> list[str]:
        return [str(getattr(self, "dynamic"))]  # noqa: B009 (every subclass but composite has one)

    def referenced_sources(self) -> list[str]:
        return []

    def _wrap(self, condition: RuleCondition) -> Rule:
        return Rule(
            name=self.name,
            condition=condition,
            severity=self.severity,
            labels=dict(self.labels),
            for_count=self.for_,
            cooldown=timedelta(seconds=float(self.cooldown)),
            dedup=self.dedup,
            webhooks=tuple(self.webhooks),
            keep_firing=math.ceil(self.keep_firing_for / WINDOWS[condition.window].total_seconds()),
        )

    def to_rule(self) -> Rule:
        """The pure rule the stream evaluates."""
        raise NotImplementedError

    def _refuse_bucket_timing(self, kind: str, keys: Sequence[str] = ("for_", "cooldown", "keep_firing_for")) -> None:
        """For a kind that does not judge a series of buckets: ``for``, ``cooldown`` and ``keep_firing_for`` (or
        ``keys``), if given, are an error."""
        for key in keys:
            if key in self.model_fields_set:
                raise ValueError(f"{key.rstrip('_')}: not used by {kind}")

    def dedup_fields(self) -> tuple[str, ...]:
        """The fields a ``dedup`` template may use: the alert's fields (first-seen and co-occurrence add one)."""
        extra = {"first_seen": ("entity",), "cooccurrence": ("entities",)}.get(str(getattr(self, "kind", "")), ())
        return ("rule", "severity", "dynamic", "window", "indicator", *extra)

    @model_validator(mode="after")
    def _check_dedup(self) -> _RuleBase:
        try:
            self.dedup.format(**dict.fromkeys(self.dedup_fields(), "x"))
        except (KeyError, IndexError, ValueError) as error:
            known = ", ".join(f"{{{name}}}" for name in self.dedup_fields())
            raise ValueError(f"dedup: unknown field {error} (use {known})") from None
        return self


Measure = Literal["article_count", "story_count", "source_count", "score_sum", "share", "novelty"]
"""The store's measures (``signals.indicators.MEASURES``): any of them, in any scope, is a rule's series."""
Indicator = Literal[
    "article_count",
    "story_count",
    "source_count",
    "score_sum",
    "share",
    "novelty",
    "ewma_mean",
    "ewma_dev",
    "zscore",
    "momentum",
]
"""The measures, then the store's signals of a scope's article count (``signals.indicators.SIGNALS``)."""


class _ScopedRule(_RuleBase):
    """A rule on one scope's series: ``dynamic`` (omitted: all articles), and optionally ``entity`` (articles
    naming it) or ``source`` (articles from it), the scopes the store keeps."""

    dynamic: str | None = None
    entity: str | None = Field(default=None, min_length=1)
    source: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _retired_keys(cls, data: object) -> object:
        if isinstance(data, dict) and "min_std" in data:
            raise ValueError(
                "min_std: no longer a rule key; a z-score divides by the store's deviation, floored at"
                " indicators.min_deviation, so a rule's z-score is the stored one"
            )
        return data

    @model_validator(mode="after")
    def _one_scope(self) -> _ScopedRule:
        if self.entity is not None and self.source is not None:
            raise ValueError(
                "source: a rule reads one scope: a dynamic (or all articles) alone, with an entity, or with a"
                " source; entity and source together is not one (the store keeps no such series)"
            )
        if "score_sum" in (getattr(self, "indicator", None), self._measure()) and self.dynamic is None:
            raise ValueError("indicator: score_sum is the sum of a dynamic's scores; it needs dynamic")
        return self

    def _measure(self) -> str:
        return str(getattr(self, "indicator", "article_count"))

    def referenced_dynamics(self) -> list[str]:
        return [] if self.dynamic is None else [self.dynamic]

    def referenced_sources(self) -> list[str]:
        return [] if self.source is None else [self.source]

    def dedup_fields(self) -> tuple[str, ...]:
        scope = tuple(name for name in ("entity", "source") if getattr(self, name) is not None)
        return (*super().dedup_fields(), *scope)

    def scope(self) -> dict[str, str]:
        """The condition's scope arguments (``*``: all)."""
        return {"dynamic": self.dynamic or "*", "entity": self.entity or "*", "source": self.source or "*"}


class ThresholdRuleSettings(_ScopedRule):
    """Fire when an indicator of a scope crosses a value within a window: a measure (``share``, ``source_count``,
    ...) as it is, or a signal of the scope's article count (``zscore``, ``momentum``, ``ewma_mean``,
    ``ewma_dev``) once its series has ``warmup`` buckets."""

    kind: Literal["threshold"]
    indicator: Indicator = "article_count"
    window: Window = "1h"
    op: Op = ">="
    value: float
    warmup: int = Field(default=24, ge=0, le=10_000, description="buckets before a signal is judged")

    @model_validator(mode="after")
    def _warmup_of_a_signal(self) -> ThresholdRuleSettings:
        if "warmup" in self.model_fields_set and self.indicator not in ("ewma_mean", "ewma_dev", "zscore", "momentum"):
            raise ValueError(
                f"warmup: {self.indicator} is a measure, judged from the first bucket; only a signal (ewma_mean,"
                " ewma_dev, zscore, momentum) has a warm-up"
            )
        return self

    def to_rule(self) -> Rule:
        return self._wrap(
            Threshold(
                indicator=self.indicator,
                window=self.window,
                op=self.op,
                threshold=self.value,
                warmup=self.warmup,
                **self.scope(),
            )
        )


class SpikeRuleSettings(_ScopedRule):
    """Fire when a bucket's z-score of a measure of a scope (the store's: against the EWMA baseline before the
    bucket) reaches ``value``, once its series has ``baseline`` buckets before the bucket."""

    kind: Literal["spike"]
    indicator: Measure = "article_count"
    window: Window = "1h"
    baseline: int = Field(default=24, ge=2, le=10_000, description="buckets of warm-up")
    value: float = 3.0

    def to_rule(self) -> Rule:
        return self._wrap(
            Spike(
                indicator=self.indicator,
                window=self.window,
                baseline=self.baseline,
                threshold=self.value,
                **self.scope(),
            )
        )


class TrendRuleSettings(_ScopedRule):
    """Fire when the momentum of a measure of a scope (the store's: fast EWMA − slow EWMA, per bucket) reaches
    ``value``, once its series has ``buckets`` buckets before the bucket."""

    kind: Literal["trend"]
    indicator: Measure = "article_count"
    window: Window = "1d"
    buckets: int = Field(default=7, ge=1, le=10_000, description="buckets of warm-up")
    value: float = 1.0

    def to_rule(self) -> Rule:
        return self._wrap(
            Trend(
                indicator=self.indicator, window=self.window, buckets=self.buckets, threshold=self.value, **self.scope()
            )
        )


class CompositeRuleSettings(_RuleBase):
    """Fire when a weighted sum of a measure over dynamics (a composite index) crosses a value in one bucket."""

    kind: Literal["composite"]
    weights: dict[str, float] = Field(min_length=1)
    indicator: Measure = "article_count"
    window: Window = "1h"
    op: Op = ">="
    value: float
    dedup: str = "{rule}|{window}"

    def referenced_dynamics(self) -> list[str]:
        return list(self.weights)

    def to_rule(self) -> Rule:
        index = CompositeIndex(self.name, dict(self.weights), self.indicator)
        return self._wrap(Composite(index, self.window, self.op, self.value))


class SilenceRuleSettings(_RuleBase):
    """Fire when a dynamic, or a ``source``, has gone quiet for ``after`` (no article while the rest of the stream
    moves on): a coverage gap. Name exactly one of ``dynamic`` and ``source``."""

    kind: Literal["silence"]
    dynamic: str | None = None
    source: str | None = None
    after: Seconds
    window: Window = "1h"

    @model_validator(mode="after")
    def _one_subject(self) -> SilenceRuleSettings:
        if (self.dynamic is None) == (self.source is None):
            raise ValueError("name exactly one of dynamic and source")
        return self

    def referenced_dynamics(self) -> list[str]:
        return [] if self.dynamic is None else [self.dynamic]

    def referenced_sources(self) -> list[str]:
        return [] if self.source is None else [self.source]

    def to_rule(self) -> Rule:
        return self._wrap(Quiet(self.dynamic or "*", timedelta(seconds=self.after), self.window, source=self.source))


class CooccurrenceRuleSettings(_RuleBase):
    """Fire when ``value`` articles (``indicator: story_count``: distinct stories) of a bucket show a dynamic
    together with entities (all of them, or any)."""

    kind: Literal["cooccurrence"]
    dynamic: str
    entities: list[str] = Field(min_length=1)
    every: bool = True
    window: Window = "1d"
    value: float = 1.0
    indicator: Literal["article_count", "story_count"] = "article_count"

    def to_rule(self) -> Rule:
        return self._wrap(
            Cooccurrence(self.dynamic, tuple(self.entities), self.every, self.window, ">=", self.value, self.indicator)
        )


class FirstSeenRuleSettings(_RuleBase):
    """An entity (any, or one of ``entities``) appears in a dynamic for the first time in ``days`` days."""

    kind: Literal["first_seen"]
    dynamic: str
    entities: list[str] = []
    days: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _never_resolves(self) -> FirstSeenRuleSettings:
        self._refuse_bucket_timing("a first_seen rule (it fires once and never resolves)", ("keep_firing_for",))
        return self

    def to_rule(self) -> Rule:
        return self._wrap(FirstSeen(self.dynamic, tuple(self.entities), self.days))


class StoryRuleSettings(_RuleBase):
    """Fire once per story (one event across outlets) when it reaches ``value`` distinct outlets
    (``indicator: source_count``) or articles (``article_count``) among the articles of ``dynamic`` (omitted:
    all), optionally naming ``entity``. A story is followed for ``days`` after its first article."""

    kind: Literal["story"]
    dynamic: str | None = None
    entity: str | None = Field(default=None, min_length=1)
    indicator: Literal["source_count", "article_count"] = "source_count"
    value: float = Field(ge=1)
    days: int = Field(default=3, ge=1, le=30)
    dedup: str = "{rule}|{story}"

    @model_validator(mode="after")
    def _fires_once_per_story(self) -> StoryRuleSettings:
        self._refuse_bucket_timing("a story rule (it fires once per story)")
        return self

    def referenced_dynamics(self) -> list[str]:
        return [] if self.dynamic is None else [self.dynamic]

    def dedup_fields(self) -> tuple[str, ...]:
        return (*super().dedup_fields(), "entity", "story")

    def to_rule(self) -> Rule:
        reach = StoryReach(self.dynamic or "*", self.entity or "*", self.indicator, self.value, self.days)
        return self._wrap(reach)


class WatchRuleSettings(_RuleBase):
    """Notify on every new article that matches (a watchlist): of ``dynamic`` (omitted: any article), naming
    ``entities`` (any one; ``every: true``: all), from ``source``, whose headline matches ``match`` (a regular
    expression, RE2 syntax, case-insensitive). One alert per article, batched into notifications by the alert
    group's ``group_interval``; articles published more than ``days`` before the newest match are not news."""

    kind: Literal["watch"]
    dynamic: str | None = None
    entities: list[str] = []
    every: bool = False
    match: str = ""
    source: str | None = Field(default=None, min_length=1)
    days: int = Field(default=2, ge=1, le=365)
    dedup: str = "{rule}|{article}"

    @model_validator(mode="after")
    def _one_alert_per_article(self) -> WatchRuleSettings:
        self._refuse_bucket_timing("a watch rule (it sends every matching article once)")
        if not (self.dynamic or self.entities or self.match or self.source):
            raise ValueError("kind: a watch rule needs what to watch: dynamic, entities, match or source")
        if self.match:
            try:
                headline_pattern(self.match)
            except ValueError as error:
                raise ValueError(f"match: not a regular expression RE2 accepts ({error}): {self.match!r}") from None
        return self

    def referenced_dynamics(self) -> list[str]:
        return [] if self.dynamic is None else [self.dynamic]

    def referenced_sources(self) -> list[str]:
        return [] if self.source is None else [self.source]

    def dedup_fields(self) -> tuple[str, ...]:
        return (*super().dedup_fields(), "article", "source")

    def to_rule(self) -> Rule:
        watch = Watch(self.dynamic or "*", tuple(self.entities), self.every, self.match, self.source, self.days)
        return self._wrap(watch)


class SourceHealthRuleSettings(_RuleBase):
    """Fire, on the wall clock, when a source (``source``, or every enabled source) has stored no new article for
    ``stale_after``, or its polls have failed without a success for ``failing_after``; resolve when it recovers.
    Judged every few seconds by the source-health watcher, not by the stream (see docs/rules.md)."""

    kind: Literal["source_health"]
    source: str | None = None
    stale_after: Seconds | None = None
    failing_after: Seconds | None = None
    dedup: str = "{rule}|{source}|{problem}"

    @model_validator(mode="after")
    def _watches_something(self) -> SourceHealthRuleSettings:
        if self.stale_after is None and self.failing_after is None:
            raise ValueError("stale_after: name stale_after, failing_after or both (a duration such as 30m or 2h)")
        self._refuse_bucket_timing(
            "a source_health rule (it fires once per outage and resolves on recovery; its durations are stale_after"
            " and failing_after)"
        )
        return self

    def referenced_dynamics(self) -> list[str]:
        return []

    def referenced_sources(self) -> list[str]:
        return [] if self.source is None else [self.source]

    def dedup_fields(self) -> tuple[str, ...]:
        return ("rule", "severity", "source", "problem")

    def to_rule(self) -> Rule:
        raise TypeError(
            f"rule {self.name!r}: a source_health rule is judged by the source-health watcher, not the stream"
        )

    def health_rule(self) -> HealthRule:
        """The pure rule the source-health watcher judges."""
        return HealthRule(
            name=self.name,
            source=self.source,
            stale_after=None if self.stale_after is None else timedelta(seconds=self.stale_after),
            failing_after=None if self.failing_after is None else timedelta(seconds=self.failing_after),
            severity=self.severity,
            labels=dict(self.labels),
            webhooks=tuple(self.webhooks),
            dedup=self.dedup,
        )


RuleSettings = Annotated[
    ThresholdRuleSettings
    | SpikeRuleSettings
    | TrendRuleSettings
    | CompositeRuleSettings
    | SilenceRuleSettings
    | CooccurrenceRuleSettings
    | FirstSeenRuleSettings
    | StoryRuleSettings
    | WatchRuleSettings
    | SourceHealthRuleSettings,
    Field(discriminator="kind"),
]
RULE_KINDS = (
    "threshold",
    "spike",
    "trend",
    "composite",
    "silence",
    "cooccurrence",
    "first_seen",
    "story",
    "watch",
    "source_health",
)


def engine_rules(rules: Sequence[RuleSettings]) -> list[Rule]:
    """The rules the stream's engine judges: every kind but ``source_health``, which the source-health watcher
    judges on the wall clock."""
    return [item.to_rule() for item in rules if not isinstance(item, SourceHealthRuleSettings)]


class RouteSettings(Section):
    """Alerts whose labels match every ``match`` pair also go to ``webhooks``."""

    match: dict[str, str] = Field(min_length=1)
    webhooks: list[str] = Field(min_length=1)


class InhibitSettings(Section):
    """A firing ``source`` alert mutes ``target`` alerts whose ``equal`` labels have the same values."""

    source: dict[str, str] = {"severity": "critical"}
    target: dict[str, str] = {"severity": "warning"}
    equal: list[str] = ["dynamic", "window"]


class AlertingSettings(Section):
    """Grouping, notification timing, inhibition and label routes, with Prometheus Alertmanager's meaning.

    ``group_wait``: how long a new group waits for more alerts before its first notification; ``group_interval``:
    how long a group waits before notifying what changed in it (new firing alerts, resolutions); ``repeat_interval``:
    how long before the firing alerts of an unchanged group are sent again (checked on each group_interval tick).
    """

    group_by: list[str] = ["alertname", "dynamic"]
    group_wait: Seconds = 10.0
    group_interval: Seconds = Field(default=300.0, gt=0)
    repeat_interval: Seconds = Field(default=14400.0, gt=0)
    inhibit: list[InhibitSettings] = [InhibitSettings()]
    routes: list[RouteSettings] = []
