"""The rule engine: applies rules to indicator updates and observations; pure code, state in a mapping.

A rule (:mod:`stackwatch.signals.conditions`) names what to watch (a condition) and how to alert (severity,
labels, ``for``, cooldown, dedup key). The :class:`RuleEngine` turns a stream of :class:`IndicatorUpdate` into
firing and resolved :class:`Alert` messages, keeping all of its state in a ``MutableMapping[str, dict]`` of JSON
values: a Faust table or a rebuilt dict in the stream, a plain dict in a backtest, so both fire the same alerts on
the same history::

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
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from stackwatch.signals.alert_text import sentence
from stackwatch.signals.baselines import BaselineParams, BaselineState, baselines
from stackwatch.signals.conditions import (
    OPERATORS,
    SIGNAL_VALUES,
    Composite,
    Cooccurrence,
    FirstSeen,
    Quiet,
    Rule,
    Scope,
    Spike,
    StoryReach,
    Threshold,
    Trend,
    Watch,
)
from stackwatch.signals.counts import ID_PREFIX, BucketCounts, ScopeFacts
from stackwatch.signals.entity_rules import first_seen
from stackwatch.signals.indicators import ALL, WINDOWS, bucket_start, hits_for
from stackwatch.signals.messages import Alert, DynamicHit, IndicatorUpdate, Observation, parse_time

__all__ = [
    "HISTORY_BUCKETS",
    "Evaluation",
    "Router",
    "RuleEngine",
    "alert_id",
    "fresh_series",
    "replay",
    "replay_observations",
    "signal_key",
]

HISTORY_BUCKETS = 400
"""Buckets of history kept per series (spike baselines and trends look back at most this far)."""


def alert_id(rule: str, *parts: str) -> str:
    """The same rule tripped by the same thing always yields the same id (replays dedupe downstream)."""
    return "alert_" + hashlib.sha256("|".join((rule, *parts)).encode("utf-8")).hexdigest()[:24]


def _series_key(indicator: str, dynamic: str, window: str) -> str:
    return f"h|{indicator}|{dynamic}|{window}"


Router = Callable[[Mapping[str, str]], Iterable[str]]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What a batch of observations produced: the per-dynamic counts to publish, and the alerts."""

    updates: list[IndicatorUpdate]
    alerts: list[Alert]


@dataclass
class RuleEngine:
    """Applies rules to observations (or indicator updates); every bit of state lives in the mapping passed in.

    Keys in the state: ``h|indicator|dynamic|window`` (bucket values of per-dynamic updates), ``r|rule|dedup``
    (one rule's series), ``b|rule|scope|measure|window`` (the running EWMA state of a signal rule's series),
    ``c|window`` (the stream's clock and when each dynamic was last seen, for :class:`Quiet` rules). ``baseline``:
    the store's EWMA parameters (``indicators:`` in the configuration), so a rule's z-score, momentum and EWMA
    are the store's, bucket for bucket.
    """

    rules: Sequence[Rule]
    router: Router = field(default=lambda labels: ())
    baseline: BaselineParams = field(default_factory=BaselineParams)

    def apply(self, state: MutableMapping[str, Any], update: IndicatorUpdate) -> list[Alert]:
        """The alerts ``update`` (a per-dynamic value) fires or resolves (usually none): rules whose series it is
        are judged on it; rules on other scopes or measures need observations (:meth:`evaluate`)."""
        if update.dynamic == ALL:
            return []
        self._remember(state, update)
        alerts = self._tick(state, update)
        bucket = update.bucket_start.isoformat()

        def read(scope: Scope, indicator: str) -> float | None:
            if scope.entity != ALL or scope.source != ALL:
                return None
            if (scope.dynamic, indicator) == (update.dynamic, update.indicator):
                return update.value
            return (state.get(_series_key(indicator, scope.dynamic, update.window)) or {}).get(bucket)

        for rule in self.rules:
            if rule.condition.series(update) is not None:
                alerts += self._judge(state, rule, update.bucket_start, read)
        return alerts

    def evaluate(
        self, state: MutableMapping[str, Any], counts: BucketCounts, batch: Sequence[Observation], now: datetime
    ) -> Evaluation:
        """One batch of observations through every rule: what the rules agent does with each record.

        Counts the batch's articles per dynamic and bucket (published, and the quiet rules' clock), per
        co-occurrence series, and per watched scope (in ``counts.table``, swept with it); judges each rule whose
        scope a bucket touched, in the order the buckets first appear, and first-seen entities on the way.
        """
        alerts = [alert for observed in batch for alert in self.observe(state, observed)]
        updates = counts.add((hit for observed in batch for hit in hits_for(observed)), now)
        for update in updates:
            alerts += self._tick(state, update)
        for update in counts.add((hit for observed in batch for hit in self.tallies(observed)), now):
            alerts += self.apply(state, update)  # co-occurrence series: the rules' own, not published
        facts = ScopeFacts(counts.table, counts.retention, self.watched())
        for window, start, scopes in facts.add(batch, now):
            alerts += self._judge_bucket(state, facts, window, start, scopes)
        return Evaluation(updates, alerts)

    def watched(self) -> set[tuple[Scope, str]]:
        """The (scope, window) series the rules read from observations (all articles too, for a share)."""
        watched: set[tuple[Scope, str]] = set()
        for rule in self.rules:
            condition = rule.condition
            if isinstance(condition, Threshold | Spike | Trend | Composite) or (
                isinstance(condition, Cooccurrence) and condition.counts_stories
            ):
                watched |= {(scope, condition.window) for scope in _scopes(condition)}
        return watched

    def current(self, state: Mapping[str, Any], rule: Rule) -> tuple[datetime, float] | None:
        """The bucket ``rule`` judges now and its value there (None before its first judged bucket)::

        engine.current(state, rule)      # (datetime(2026, 5, 1, 13, tzinfo=UTC), 3.4)
        """
        series = state.get(self._key(rule, rule.condition.fields())) or {}
        if series.get("bucket") is None or series.get("value") is None:
            return None
        return parse_time(series["bucket"]), float(series["value"])

    def _judge_bucket(
        self, state: MutableMapping[str, Any], facts: ScopeFacts, window: str, start: datetime, scopes: frozenset[Scope]
    ) -> list[Alert]:
        """Judge every rule of ``window`` whose value the touched ``scopes`` may have moved at ``start``."""
        measured: dict[Scope, dict[str, float]] = {}

        def read(scope: Scope, indicator: str) -> float | None:
            if scope not in measured:
                measured[scope] = facts.measures(scope, window, start)
            return measured[scope].get(indicator)

        alerts: list[Alert] = []
        for rule in self.rules:
            condition = rule.condition
            if isinstance(condition, Cooccurrence) and not condition.counts_stories:
                continue  # its article count is a series of its own (:meth:`tallies`)
            if not isinstance(condition, Threshold | Spike | Trend | Composite | Cooccurrence):
                continue
            if condition.window != window or scopes.isdisjoint(_scopes(condition)):
                continue
            own = condition.scopes if isinstance(condition, Composite) else (condition.scope,)
            if not any(facts.count(scope, window, start) for scope in own):
                continue  # only the bucket's total moved: the series has no article here (a gap, judged as one)
            alerts += self._judge(state, rule, start, read)
        return alerts

    def _judge(
        self, state: MutableMapping[str, Any], rule: Rule, bucket: datetime, read: Callable[[Scope, str], float | None]
    ) -> list[Alert]:
        """Judge ``rule`` at ``bucket`` on the value ``read`` gives: a measure as it is, a signal of the measure's
        series by the store's :func:`~stackwatch.signals.baselines.baselines` once the series is warm."""
        condition = rule.condition
        signal: str | None = None
        if isinstance(condition, Composite):
            measure: float | None = condition.value(read)
        elif isinstance(condition, Cooccurrence):
            scope = condition.scope if condition.counts_stories else Scope(condition.tally)
            measure = read(scope, condition.indicator)
        elif isinstance(condition, Threshold | Spike | Trend):
            measure, signal = read(condition.scope, condition.measure), condition.signal
        else:
            return []
        if measure is None:
            return []
        if signal is None or not isinstance(condition, Threshold | Spike | Trend):
            return self._observe(state, rule, condition.fields(), bucket, measure, lambda _: 0.0)
        judged = self._signal(state, rule, condition, bucket, measure, signal)
        if judged is None:
            return []
        value, warm, empty_bucket = judged
        if not warm:
            return []
        return self._observe(state, rule, condition.fields(), bucket, value, empty_bucket)

    def _signal(
        self,
        state: MutableMapping[str, Any],
        rule: Rule,
        condition: Threshold | Spike | Trend,
        bucket: datetime,
        measure: float,
        signal: str,
    ) -> tuple[float, bool, Callable[[datetime], float]] | None:
        """The signal at ``bucket`` of the series whose bucket value is now ``measure``, whether the series is warm
        there, and the signal at an empty bucket right after the one before; None for a bucket already passed.

        The series runs as the store's does: from its first bucket, dense (a quiet bucket is 0), each bucket folded
        into the EWMA state once the next one begins."""
        key = signal_key(rule.name, condition)
        record = dict(state.get(key) or {"open": None, "value": 0.0, "state": None, "count": 0})
        stamp = bucket.isoformat()
        if record["open"] is not None and stamp < record["open"]:
            return None  # a late article for a bucket already passed: the store recounts it, the rule does not
        pick = SIGNAL_VALUES[signal]
        before = _baseline_state(record["state"])
        if record["open"] is not None and stamp > record["open"]:
            gap = round((bucket - parse_time(record["open"])) / WINDOWS[condition.window]) - 1
            folded = baselines([record["value"], *([0.0] * gap)], self.baseline, before)
            after_open: BaselineState | None = folded[0].state
            before = folded[-1].state
            record.update(state=_plain(folded[-1].state), count=record["count"] + 1 + gap)
        else:
            after_open = before
        record.update(open=stamp, value=measure)
        state[key] = record

        def empty_bucket(_: datetime) -> float:
            return pick(baselines([0.0], self.baseline, after_open)[0])

        point = baselines([measure], self.baseline, before)[0]
        return pick(point), record["count"] >= condition.warmup, empty_bucket

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
            if isinstance(rule.condition, Cooccurrence)
            and not rule.condition.counts_stories
            and rule.condition.matches(observed)
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
        for rule in self.rules:
            if isinstance(rule.condition, StoryReach) and rule.condition.scope.matches(observed):
                alerts += self._story_reach(state, rule, rule.condition, observed)
            elif isinstance(rule.condition, Watch) and rule.condition.matches(observed):
                alerts += self._watched(state, rule, rule.condition, observed)
        return alerts

    def _watched(
        self, state: MutableMapping[str, Any], rule: Rule, condition: Watch, observed: Observation
    ) -> list[Alert]:
        """A watch rule's alert for one matching article, unless it is older news than the rule's ``days`` allow
        (state key ``w|rule``: the newest publication time matched). Its id is the article's: a redelivery, or the
        article sent again after a regrouping, makes the same alert, which the store keeps once."""
        key = f"w|{rule.name}"
        published = observed.published_at.isoformat()
        newest = max(str(state.get(key) or published), published)
        state[key] = newest
        if observed.published_at < parse_time(newest) - timedelta(days=condition.days):
            return []
        fields = {**condition.fields(), "article": observed.article_id, "source": observed.source}
        labels = rule.alert_labels(fields)
        dedup = self.dedup_key(rule, fields)
        title = " ".join(observed.title.split())[:300] or observed.article_id
        return [
            Alert(
                id=alert_id(rule.name, dedup, observed.article_id),
                rule=rule.name,
                severity=rule.severity,
                dynamic=condition.dynamic,
                indicator=condition.indicator,
                window=condition.window,
                bucket_start=bucket_start(observed.published_at, condition.window),
                value=1.0,
                threshold=1.0,
                message=f"New in {'all articles' if condition.dynamic == ALL else condition.dynamic}: {title}"
                f" ({observed.source})",
                webhooks=self._webhooks(rule, labels),
                fired_at=observed.published_at,
                kind=rule.kind,
                dedup_key=dedup,
                labels=labels,
                values={"article": 1.0},
            )
        ]

    def _story_reach(
        self, state: MutableMapping[str, Any], rule: Rule, condition: StoryReach, observed: Observation
    ) -> list[Alert]:
        """Add the article to its story's followers (state key ``s|rule``: per story, its first publication time,
        its members as ``id prefix|source``, and whether it fired); the alert if the story now reaches the value.
        The stories the observation names as merged into its own are folded in, so a story that fired does not
        fire again under its survivor's id. Stories whose first article is more than ``days`` older than this one are
        forgotten."""
        key = f"s|{rule.name}"
        stories = dict(state.get(key) or {})
        story = observed.story
        first, members, fired = stories.get(story) or (observed.published_at.isoformat(), [], False)
        first = min(first, observed.published_at.isoformat())
        members = [*members, f"{observed.article_id[:ID_PREFIX]}|{observed.source}"]
        for former in observed.former_stories:  # merged into this story: one event, followed (and fired) once
            if former != story and former in stories:
                their_first, their_members, their_fired = stories.pop(former)
                first, members, fired = min(first, their_first), [*members, *their_members], fired or their_fired
        members = sorted(set(members))
        sources = sorted({member.split("|", 1)[1] for member in members})
        value = float(len(sources) if condition.indicator == "source_count" else len(members))
        alerts = []
        if not fired and OPERATORS[condition.op](value, condition.threshold):
            alerts.append(self._story_alert(rule, condition, story, parse_time(first), value, sources))
            fired = True
        stories[story] = [first, members, fired]
        horizon = (observed.published_at - timedelta(days=condition.days)).isoformat()
        state[key] = {name: item for name, item in stories.items() if item[0] >= horizon}
        return alerts

    def _story_alert(
        self, rule: Rule, condition: StoryReach, story: str, first: datetime, value: float, sources: Sequence[str]
    ) -> Alert:
        fields = {**condition.fields(), "story": story}
        labels = rule.alert_labels(fields)
        dedup = self.dedup_key(rule, fields)
        bucket = bucket_start(first, condition.window)
        counted = "outlets" if condition.indicator == "source_count" else "articles"
        within = "" if condition.scope == Scope() else f" in {condition.scope.describe()}"
        return Alert(
            id=alert_id(rule.name, dedup, story),
            rule=rule.name,
            severity=rule.severity,
            dynamic=condition.dynamic,
            indicator=condition.indicator,
            window=condition.window,
            bucket_start=bucket,
            value=value,
            threshold=float(condition.threshold),
            message=f"A story{within} is reported by {value:g} {counted} ({', '.join(sources)}), at or above"
            f" {condition.threshold:g}",
            webhooks=self._webhooks(rule, labels),
            fired_at=bucket,
            kind=rule.kind,
            dedup_key=dedup,
            labels=labels,
            values={condition.indicator: value},
        )

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
        fields = {
            "dynamic": condition.dynamic,
            "indicator": condition.indicator,
            "window": "1d",
            "entity": entity,
            "days": str(condition.days),
        }
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
                fields = quiet.fields()
                alerts += self._verdict(state, rule, fields, judged, hours >= quiet.threshold, hours)
        if clock["bucket"] is None or bucket > clock["bucket"]:
            clock["bucket"] = bucket
        clock["first"] = min(clock.get("first") or bucket, bucket)
        if update.indicator == "article_count" and update.value > 0 and bucket > seen.get(update.dynamic, ""):
            seen[update.dynamic] = bucket
        clock["seen"] = seen
        state[key] = clock
        return alerts

    # -- one rule's series -------------------------------------------------------------------------------------

    def _observe(
        self,
        state: MutableMapping[str, Any],
        rule: Rule,
        fields: dict[str, str],
        bucket: datetime,
        value: float,
        empty_bucket: Callable[[datetime], float],
    ) -> list[Alert]:
        key = self._key(rule, fields)
        series = dict(state.get(key) or fresh_series())
        alerts: list[Alert] = []
        current = series["bucket"]
        stamp = bucket.isoformat()
        if current is not None and stamp < current:
            return []  # a late update for a bucket already judged
        if current is not None and stamp > current:
            state[key] = series
            alerts += self._close(state, rule, fields, parse_time(current), bucket, empty_bucket)
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
        self,
        state: MutableMapping[str, Any],
        rule: Rule,
        fields: dict[str, str],
        closed: datetime,
        following: datetime,
        empty_bucket: Callable[[datetime], float],
    ) -> list[Alert]:
        """Judge the bucket ``closed`` now that ``following`` has begun, and the empty buckets between them: one
        verdict, at the first of them, stands for the gap (``empty_bucket`` is the rule's value at an empty
        bucket: 0 for a count, but a trend over the buckets before it goes on)."""
        series = state[self._key(rule, fields)]
        alerts: list[Alert] = []
        if rule.judges_early:
            if not series["held"]:
                alerts += self._verdict(state, rule, fields, closed, False, series["value"])
        else:
            holds = OPERATORS[rule.condition.op](series["value"], rule.condition.threshold)
            alerts += self._verdict(state, rule, fields, closed, holds, series["value"])
        width = WINDOWS[rule.condition.window]
        gap = closed + width
        if gap < following:
            value = empty_bucket(gap)
            holds = OPERATORS[rule.condition.op](value, rule.condition.threshold)
            alerts += self._verdict(state, rule, fields, gap, holds, value, buckets=(following - gap) // width)
        return alerts

    def _verdict(
        self,
        state: MutableMapping[str, Any],
        rule: Rule,
        fields: dict[str, str],
        bucket: datetime,
        holds: bool,
        value: float | None,
        *,
        buckets: int = 1,
    ) -> list[Alert]:
        """One verdict on the series at ``bucket``; ``buckets``: how many buckets it stands for (a gap of empty
        ones), which count towards ``keep_firing`` when the condition does not hold."""
        key = self._key(rule, fields)
        series = dict(state.get(key) or fresh_series())
        alerts: list[Alert] = []
        if holds:
            series["streak"] += 1
            series["cleared"] = 0
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
            series["cleared"] = series.get("cleared", 0) + buckets
            if series["firing"] and series["cleared"] > rule.keep_firing:
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
        message = sentence(rule, bucket, value, status)
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


def _scopes(condition: Threshold | Spike | Trend | Composite | Cooccurrence) -> set[Scope]:
    """The scopes whose articles move the condition's value (a share moves with every article of the bucket)."""
    scopes = set(condition.scopes) if isinstance(condition, Composite) else {condition.scope}
    if isinstance(condition, Cooccurrence):
        return scopes
    measure = condition.indicator if isinstance(condition, Composite) else condition.measure
    return scopes | {Scope()} if measure == "share" else scopes


def signal_key(rule: str, condition: Threshold | Spike | Trend) -> str:
    """The engine's state key of a rule's signal series: ``{"open": bucket, "value": its measure so far, "state":
    the EWMA state of the buckets before it, "count": how many those are}``."""
    return f"b|{rule}|{condition.scope.key}|{condition.measure}|{condition.window}"


def _baseline_state(values: Sequence[float] | None) -> BaselineState | None:
    return None if values is None else BaselineState(*values)


def _plain(state: BaselineState) -> list[float]:
    """A baseline state as JSON (the rule-state table holds plain values)."""
    return [state.mean, state.variance, state.fast, state.slow]


def fresh_series() -> dict[str, Any]:
    """A rule series' state before its first bucket (key ``r|rule|dedup`` in the engine's state)."""
    return {
        "bucket": None,
        "held": False,
        "value": None,
        "streak": 0,
        "firing": False,
        "muted": False,
        "notified": None,
        "fired": None,
        "cleared": 0,
    }


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
