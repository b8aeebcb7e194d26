"""Rules on every indicator the store computes, in every scope, by the store's definitions.

Scripted streams per rule kind on non-count indicators and on entity and source scopes (pure values); the rule's
value of each bucket against the stored indicator row of that bucket, and the replay of stored history against
the stream (real DuckDB files).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackwatch.errors import ConfigError
from stackwatch.settings import Settings, settings_from_mapping
from stackwatch.signals.baselines import BaselineParams, baselines
from stackwatch.signals.composite import CompositeIndex
from stackwatch.signals.conditions import (
    Composite,
    Cooccurrence,
    FirstSeen,
    Rule,
    Spike,
    Threshold,
    Trend,
    Watch,
)
from stackwatch.signals.counts import BucketCounts
from stackwatch.signals.entities import Gazetteer
from stackwatch.signals.indicators import MEASURES, SIGNALS
from stackwatch.signals.messages import Alert, Article, Observation, TaggedArticle
from stackwatch.signals.rule_state import StoredObservation, rebuild
from stackwatch.signals.rules import RuleEngine
from stackwatch.storage.derive import Derivation
from stackwatch.storage.history import observation_history
from stackwatch.storage.recovery import stored_history, stored_observations
from stackwatch.storage.store import Batch, Store

T0 = datetime(2026, 5, 1, tzinfo=UTC)
RETENTION = timedelta(days=3650)


def at(hour: int, minute: int = 0) -> datetime:
    return T0 + timedelta(hours=hour, minutes=minute)


class Stream:
    """Observations written hour by hour, then fed to an engine one batch per hour part."""

    def __init__(self) -> None:
        self.items: list[Observation] = []

    def add(
        self,
        hour: int,
        count: int,
        labels: tuple[str, ...] = (),
        *,
        entities: tuple[str, ...] = (),
        sources: Sequence[str] = ("wire",),
        story: str = "",
    ) -> None:
        for n in range(count):
            minute = sum(1 for item in self.items if at(hour) <= item.published_at < at(hour + 1))
            self.items.append(
                Observation(
                    f"h{hour}-{len(self.items)}",
                    sources[n % len(sources)],
                    at(hour, minute),
                    labels,
                    entities,
                    {label: 0.9 for label in labels},
                    story,
                )
            )

    def run(self, engine: RuleEngine, size: int = 1) -> list[Alert]:
        state: dict[str, Any] = {}
        counts = BucketCounts({}, RETENTION)
        alerts: list[Alert] = []
        items = sorted(self.items, key=lambda item: item.published_at)
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            alerts += engine.evaluate(state, counts, batch, batch[-1].published_at).alerts
        return alerts


def fired(alerts: Iterable[Alert]) -> list[tuple[str, str, int]]:
    return [(a.rule, a.status, int((a.bucket_start - T0).total_seconds() // 3600)) for a in alerts]


def test_a_share_above_30_percent_is_judged_on_the_whole_bucket() -> None:
    stream = Stream()
    stream.add(0, 2, ("capex",))
    stream.add(0, 8, ("edge",))
    stream.add(1, 4, ("capex",))
    stream.add(1, 6, ("edge",))
    stream.add(2, 1, ("capex",))  # hour 2 opens at 100 % capex, ends at 10 %: not a firing
    stream.add(2, 9, ("edge",))
    stream.add(3, 1, ("capex",))  # the series moves on: hour 2 is judged
    engine = RuleEngine([Rule("capex-share", Threshold("capex", "share", op=">", threshold=0.3))])
    alerts = stream.run(engine)
    assert fired(alerts) == [("capex-share", "firing", 1), ("capex-share", "resolved", 2)]
    assert alerts[0].value == pytest.approx(0.4)
    assert alerts[0].values == {"share": pytest.approx(0.4)}
    assert alerts[0].message == "capex share of coverage was 40 % in the hour from 2026-05-01 01:00 UTC, above 30 %"
    assert alerts[1].message.startswith("Resolved: capex share of coverage was 10 % in the hour from 2026-05-01 02:00")


def test_a_z_score_above_3_waits_out_the_series_warm_up() -> None:
    # The series starts with a partial bucket (1 article), then a flat 10 an hour, then 30: judged from its
    # first bucket, the flat 10 scores z = 9 against the partial one (the z = 2,623 on day 2).
    stream = Stream()
    stream.add(0, 1, ("decoupling",))
    for hour in range(1, 7):
        stream.add(hour, 10, ("decoupling",))
    stream.add(7, 30, ("decoupling",))
    warm = Rule("z", Threshold("decoupling", "zscore", threshold=3, warmup=3))
    cold = Rule("cold", Threshold("decoupling", "zscore", threshold=3, warmup=0))
    got = fired(stream.run(RuleEngine([warm, cold]), size=5))
    assert [item for item in got if item[0] == "z"] == [("z", "firing", 7)]
    assert ("cold", "firing", 1) in got
    assert warm.warmup == 3


def test_more_than_5_distinct_sources_in_a_dynamic_fire_as_soon_as_they_do() -> None:
    stream = Stream()
    stream.add(0, 8, ("edge",), sources=("a", "b", "c", "d"))
    stream.add(1, 6, ("edge",), sources=("a", "b", "c", "d", "e", "f"))
    stream.add(1, 4, ("edge",), sources=("g",))
    alerts = stream.run(RuleEngine([Rule("wide", Threshold("edge", "source_count", op=">", threshold=5))]))
    assert fired(alerts) == [("wide", "firing", 1)]
    assert alerts[0].value == 6.0  # fired on the 6th source, not at the bucket's end (7)


def test_nvidia_in_decoupling_momentum_counts_only_the_articles_naming_nvidia() -> None:
    stream = Stream()
    for hour in range(4):
        stream.add(hour, 1, ("decoupling",), entities=("Nvidia",))
        stream.add(hour, 5, ("decoupling",))
    stream.add(4, 6, ("decoupling",), entities=("Nvidia",))
    stream.add(4, 3, ("decoupling",), entities=("AMD",))
    nvidia = Rule("nv", Trend("decoupling", entity="NVIDIA", window="1h", buckets=3, threshold=1.0))
    amd = Rule("amd", Trend("decoupling", entity="AMD", window="1h", buckets=3, threshold=3.0))
    alerts = stream.run(RuleEngine([nvidia, amd]))
    assert fired(alerts) == [("nv", "firing", 4)]
    (alert,) = alerts
    assert (alert.dynamic, alert.indicator, alert.labels["entity"]) == ("decoupling", "momentum", "NVIDIA")
    # Fired on hour 4's 4th NVIDIA article: fast EWMA (span 3) 2.5 - slow EWMA (span 24) 1.24, the store's momentum.
    assert alert.value == pytest.approx(2.5 - 1.24)
    assert alert.message.startswith("decoupling articles naming NVIDIA momentum of the article count was 1.26")


def test_a_spike_of_distinct_stories_about_an_entity_ignores_syndicated_copies() -> None:
    stream = Stream()
    for hour in range(4):
        stream.add(hour, 5, ("capex",), entities=("Microsoft",), story=f"story-{hour}")  # one story, 5 copies
    for n in range(4):
        stream.add(4, 1, ("edge",), entities=("Microsoft",), story=f"new-{n}")
    stream.add(4, 9, ("edge",), entities=("Microsoft",), story="new-0")
    stories = Rule("stories", Spike(entity="Microsoft", indicator="story_count", baseline=3, threshold=2.5))
    articles = Rule("articles", Spike(entity="Microsoft", baseline=3, threshold=2.5))
    got = fired(stream.run(RuleEngine([stories, articles])))
    # The 4th new story scores z = 3 against 1 an hour; the articles (5 copies an hour before) only at the 8th.
    assert got == [("stories", "firing", 4), ("articles", "firing", 4)]
    labels = stream.run(RuleEngine([stories]))[0].labels
    assert (labels["dynamic"], labels["entity"], labels["indicator"]) == ("*", "Microsoft", "zscore(story_count)")


def test_a_source_scope_counts_that_source_only() -> None:
    stream = Stream()
    stream.add(0, 3, ("capex",), sources=("reuters", "blog", "blog"))
    stream.add(1, 3, ("capex",), sources=("reuters",))
    stream.add(2, 1, ("edge",))
    stream.add(3, 1, ("edge",), sources=("reuters",))  # the series moves on: hours 1 and 2 (empty) are judged
    rule = Rule("reuters", Threshold(source="reuters", threshold=2, op=">="))
    alerts = stream.run(RuleEngine([rule]))
    assert fired(alerts) == [("reuters", "firing", 1), ("reuters", "resolved", 2)]
    assert (
        alerts[0].message
        == "all articles from reuters article count was 2 in the hour from 2026-05-01 01:00 UTC, at or above 2"
    )


def test_a_composite_of_shares_is_judged_on_the_whole_bucket() -> None:
    stream = Stream()
    stream.add(0, 6, ("capex",))
    stream.add(0, 2, ("edge",))
    stream.add(0, 2, ("exclusivity",))
    stream.add(1, 1, ("capex",))
    index = CompositeIndex("capex-over-edge", {"capex": 1.0, "edge": -1.0}, "share")
    alerts = stream.run(RuleEngine([Rule("mix", Composite(index, op=">", threshold=0.3))]))
    assert fired(alerts) == [("mix", "firing", 0)]  # 60 % - 20 %, once hour 0 is complete
    assert alerts[0].value == pytest.approx(0.4)
    assert alerts[0].message.startswith("index capex-over-edge (weighted share of coverage) was 40 %")


# -- configuration: every indicator and scope is a key, and a wrong one says what is allowed ----------------------


def settings_with(rule: dict[str, Any]) -> Settings:
    return settings_from_mapping({"rules": [{"name": "r", **rule}]}, secrets=False)


def error_of(rule: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_with(rule)
    return str(caught.value)


def test_every_indicator_of_the_store_is_a_rule_key() -> None:
    for indicator in (*MEASURES, *SIGNALS):
        (rule,) = settings_with({"kind": "threshold", "dynamic": "capex", "indicator": indicator, "value": 1}).rules
        assert rule.to_rule().condition.fields()["indicator"] == indicator
    for kind in ("spike", "trend", "composite"):
        extra = {"weights": {"capex": 1}, "value": 1} if kind == "composite" else {"dynamic": "capex"}
        for indicator in MEASURES:
            assert settings_with({"kind": kind, "indicator": indicator, **extra}).rules
    scoped = settings_with({"kind": "trend", "dynamic": "decoupling", "entity": "NVIDIA"}).rules[0].to_rule()
    assert scoped.condition.fields() == {
        "dynamic": "decoupling",
        "entity": "NVIDIA",
        "indicator": "momentum",
        "window": "1d",
    }


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"kind": "threshold", "dynamic": "capex", "indicator": "shares", "value": 1},
            "rules[0].indicator: Input should be 'article_count', 'story_count', 'source_count', 'score_sum', 'share',"
            " 'novelty', 'ewma_mean', 'ewma_dev', 'zscore' or 'momentum' (got 'shares')",
        ),
        (
            {"kind": "spike", "dynamic": "capex", "indicator": "zscore"},
            "rules[0].indicator: Input should be 'article_count', 'story_count', 'source_count', 'score_sum', 'share'"
            " or 'novelty' (got 'zscore')",
        ),
        (
            {"kind": "threshold", "dynamic": "capex", "entity": "NVIDIA", "source": "wire", "value": 1},
            "rules[0].source: a rule reads one scope: a dynamic (or all articles) alone, with an entity, or with a"
            " source; entity and source together is not one",
        ),
        (
            {"kind": "threshold", "entity": "NVIDIA", "indicator": "score_sum", "value": 1},
            "rules[0].indicator: score_sum is the sum of a dynamic's scores; it needs dynamic",
        ),
        (
            {"kind": "threshold", "dynamic": "capex", "indicator": "share", "warmup": 3, "value": 1},
            "rules[0].warmup: share is a measure, judged from the first bucket; only a signal",
        ),
        (
            {"kind": "spike", "dynamic": "capex", "min_std": 2},
            "rules[0].min_std: no longer a rule key; a z-score divides by the store's deviation",
        ),
    ],
)
def test_a_wrong_indicator_or_scope_names_the_key_and_what_is_allowed(rule: dict[str, Any], message: str) -> None:
    assert message in error_of(rule)


def test_a_story_rule_is_one_story_reaching_a_number_of_outlets_or_articles() -> None:
    (rule,) = settings_with({"kind": "story", "dynamic": "capex", "value": 5}).rules
    built = rule.to_rule()
    assert built.kind == "story"
    assert built.dedup == "{rule}|{story}"  # one alert per story
    assert built.condition.fields() == {"dynamic": "capex", "indicator": "source_count", "window": "1d"}
    assert "rules[0].indicator: Input should be 'source_count' or 'article_count'" in error_of(
        {"kind": "story", "indicator": "share", "value": 5}
    )
    assert "rules[0].value: Input should be greater than or equal to 1" in error_of({"kind": "story", "value": 0})
    assert "rules[0].for: not used by a story rule" in error_of({"kind": "story", "value": 3, "for": 2})
    assert "rules[0].dynamic: unknown dynamic 'capx'" in error_of({"kind": "story", "dynamic": "capx", "value": 3})


def test_a_watch_rule_is_every_new_article_matching_a_dynamic_entities_a_headline_or_a_source() -> None:
    (rule,) = settings_with(
        {"kind": "watch", "dynamic": "capex", "entities": ["NVIDIA"], "match": "gulf|saudi", "days": 3}
    ).rules
    built = rule.to_rule()
    assert (built.kind, built.dedup, built.judged_per_article) == ("watch", "{rule}|{article}", True)
    assert built.condition == Watch("capex", ("NVIDIA",), False, "gulf|saudi", None, 3)
    assert "rules[0].match: not a regular expression RE2 accepts" in error_of({"kind": "watch", "match": "(a|b"})
    assert "rules[0].match: not a regular expression RE2 accepts" in error_of({"kind": "watch", "match": r"(\w)\1"})
    assert "needs what to watch" in error_of({"kind": "watch"})
    assert "rules[0].for: not used by a watch rule" in error_of({"kind": "watch", "dynamic": "capex", "for": 2})
    assert "rules[0].dynamic: unknown dynamic 'capx'" in error_of({"kind": "watch", "dynamic": "capx"})


# -- one definition: the rule's value of a bucket is the stored row of that bucket ------------------------------

SOURCES = ("wire", "blog", "paper")


def tagged_stream() -> list[TaggedArticle]:
    """40 hours of capex and decoupling coverage, some of it syndicated (stories) and naming NVIDIA."""
    items = []
    for number in range(400):
        hour = (number * 7) % 40 if number % 9 else number % 40
        minute = (number * 13) % 60
        published = at(hour, minute)
        syndicated = number % 5 == 0
        nvidia = number % 3 == 0
        title = (
            f"NVIDIA wins hyperscaler order, wire story {hour}"
            if syndicated
            else f"{'NVIDIA' if nvidia else 'AMD'} item {number}: analysts weigh the week's own details"
        )
        labels = ("capex",) if number % 4 else ("capex", "decoupling")
        if number % 7 == 0:
            labels = ("decoupling",)
        article = Article(
            id=f"a{number:04d}",
            url=f"https://x.test/{number}",
            title=title,
            summary="",
            source=SOURCES[number % 3],
            connector="rss",
            published_at=published,
            fetched_at=published,
        )
        scores = {"capex": round(0.5 + (number % 50) / 100, 3), "decoupling": round(0.6 + (number % 30) / 100, 3)}
        items.append(TaggedArticle(article, labels, scores, "v1", T0))
    return sorted(items, key=lambda item: (item.article.published_at, item.article.id))


SCOPES: list[dict[str, str]] = [
    {"dynamic": "capex"},
    {"dynamic": "decoupling", "entity": "NVIDIA"},
    {"dynamic": "capex", "source": "wire"},
    {"entity": "NVIDIA"},
    {"source": "blog"},
    {},
]


def value_rules() -> list[Rule]:
    rules = []
    for number, scope in enumerate(SCOPES):
        for measure in MEASURES:
            if measure != "score_sum" or "dynamic" in scope:
                rules.append(Rule(f"m{number}-{measure}", Threshold(indicator=measure, **scope)))
    for dynamic in ("capex", "decoupling"):
        rules += [Rule(f"{dynamic}-{signal}", Threshold(dynamic, signal, warmup=0)) for signal in SIGNALS]
    rules.append(Rule("nvidia-z", Threshold("decoupling", "zscore", entity="NVIDIA", warmup=0)))
    return rules


def judged_values(engine: RuleEngine, observations: Sequence[Observation]) -> dict[str, dict[datetime, float]]:
    """Every rule's value of each bucket, as the engine last judged it (one article at a time, in time order)."""
    state: dict[str, Any] = {}
    counts = BucketCounts({}, RETENTION)
    values: dict[str, dict[datetime, float]] = {}
    for observed in observations:
        engine.evaluate(state, counts, [observed], observed.published_at)
        for rule in engine.rules:
            current = engine.current(state, rule)
            if current is not None:
                values.setdefault(rule.name, {})[current[0]] = current[1]
    return values


def test_a_rules_value_of_a_bucket_is_the_stored_indicator_row(tmp_path: Path) -> None:
    derivation = Derivation(Gazetteer(), (), BaselineParams())
    with Store.open(tmp_path / "s.duckdb", derivation=derivation) as store:
        articles = tagged_stream()
        for start in range(0, len(articles), 25):
            store.write(Batch(tagged=articles[start : start + 25]))
        stored = {
            tuple(row[:6]): float(row[6])
            for row in store.query(
                "SELECT indicator, dynamic, entity, source, bucket_width, bucket_start, value FROM indicators"
                " WHERE bucket_width = '1h'"
            ).rows
        }
        observations = observation_history(store.connection, T0)
    assert len(observations) == 400
    assert len({item.story for item in observations}) < 400  # the syndicated copies share stories
    engine = RuleEngine(value_rules())
    judged = judged_values(engine, observations)
    compared = 0
    for rule in engine.rules:
        condition = rule.condition
        assert isinstance(condition, Threshold)
        if rule.name == "nvidia-z":
            continue
        scope = condition.scope
        key = (condition.indicator, scope.dynamic, scope.entity, scope.source, "1h")
        expected = {row[5]: value for row, value in stored.items() if row[:5] == key}
        got = judged[rule.name]
        if condition.signal is None:  # a measure: every bucket with articles of the scope, each equal
            assert got.keys() == expected.keys(), rule.name
        assert got.keys() <= expected.keys(), rule.name
        for bucket, value in got.items():
            # Sums of scores and novelty differ by at most 1e-9: SQL rounds nanounits half away from zero, the
            # reference definition half to even.
            assert math.isclose(value, expected[bucket], rel_tol=1e-9, abs_tol=1e-8), (rule.name, bucket)
            compared += 1
    assert compared > 1000
    # The store keeps signals per dynamic; a rule computes them for any scope with the same function.
    counts = {
        row[5]: value
        for row, value in stored.items()
        if row[:5] == ("article_count", "decoupling", "NVIDIA", "*", "1h")
    }
    hours = [min(counts) + timedelta(hours=n) for n in range(int((max(counts) - min(counts)) / timedelta(hours=1)) + 1)]
    points = dict(zip(hours, baselines([counts.get(hour, 0.0) for hour in hours], BaselineParams()), strict=True))
    for bucket, value in judged["nvidia-z"].items():
        assert value == pytest.approx(points[bucket].zscore)


def test_a_replay_of_stored_history_rebuilds_the_streams_state(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb", derivation=Derivation(Gazetteer(), (), BaselineParams())) as store:
        articles = tagged_stream()
        for start in range(0, len(articles), 25):
            store.write(Batch(tagged=articles[start : start + 25]))
        history = stored_history(store.connection, T0)
    rules = [
        Rule("share", Threshold("capex", "share", op=">", threshold=0.8)),
        Rule("sources", Threshold("decoupling", "source_count", threshold=3)),
        Rule("z", Spike("capex", baseline=4, threshold=1.5)),
        Rule("nv", Trend("decoupling", entity="NVIDIA", window="1h", buckets=4, threshold=0.5)),
        Rule("stories", Threshold(entity="NVIDIA", indicator="story_count", threshold=2)),
    ]
    engine = RuleEngine(rules)
    state: dict[str, Any] = {}
    table: dict[str, list[str]] = {}
    counts = BucketCounts(table, RETENTION)
    streamed: list[Alert] = []
    for stored_at, batch in _batches(history):
        streamed += engine.evaluate(state, counts, batch, stored_at).alerts
    assert {alert.rule for alert in streamed} == {rule.name for rule in rules}
    for cut in (5, 8, 13):
        before = [item for item in history if item.stored_at <= history[cut * 25 - 1].stored_at]
        rebuilt = rebuild(engine, before, retention=RETENTION)
        assert rebuilt.state == _state_at(engine, before)  # the replay's state is the stream's
        resumed = list(rebuilt.alerts)
        for stored_at, batch in _batches(history[len(before) :]):
            resumed += engine.evaluate(rebuilt.state, BucketCounts(rebuilt.counts, RETENTION), batch, stored_at).alerts
        assert [alert.id for alert in resumed] == [alert.id for alert in streamed], f"restart after {cut}"


def _batches(history: Sequence[StoredObservation]) -> list[tuple[datetime, list[Observation]]]:
    batches: dict[datetime, list[Observation]] = {}
    for item in history:
        batches.setdefault(item.stored_at, []).append(item.observation)
    return list(batches.items())


def _state_at(engine: RuleEngine, history: Sequence[StoredObservation]) -> dict[str, Any]:
    """The state a stream that read ``history`` one store transaction at a time holds."""
    state: dict[str, Any] = {}
    counts = BucketCounts({}, RETENTION)
    for stored_at, batch in _batches(history):
        engine.evaluate(state, counts, batch, stored_at)
    return state


def test_an_alerts_value_sql_recomputes_the_value_it_judged(tmp_path: Path) -> None:
    """The stream as the service runs it: each write, then the rules on what it stored, then their alerts. Each
    alert's ``value_sql`` gives back the value the rule judged, for every measure of the articles themselves in
    every scope, of composites and of co-occurrences. (Story counts and novelty are read as the stories are now: a
    later report can regroup them.)"""
    kept = ("article_count", "source_count", "score_sum", "share")
    rules = [rule for rule in value_rules() if rule.condition.fields()["indicator"] in kept]
    for measure in kept:
        mix = CompositeIndex(f"mix_{measure}", {"capex": 2.0, "decoupling": 0.5}, measure)
        rules.append(Rule(f"mix-{measure}", Composite(mix, window="1h", threshold=0.1)))
    rules += [
        Rule("watch-nvidia", Watch("decoupling", ("NVIDIA",), pattern="wire story"), dedup="{rule}|{article}"),
        Rule("watch-blog", Watch(source="blog", days=1), dedup="{rule}|{article}"),
        Rule("nvidia-decoupling", Cooccurrence("decoupling", ("nvidia",), window="1h", threshold=2)),
        Rule("either-capex", Cooccurrence("capex", ("NVIDIA", "AMD"), every=False, window="1h", threshold=3)),
    ]
    engine = RuleEngine(rules)
    state: dict[str, Any] = {}
    counts = BucketCounts({}, RETENTION)
    with Store.open(tmp_path / "s.duckdb", derivation=Derivation(Gazetteer(), (), BaselineParams())) as store:
        articles = tagged_stream()
        for start in range(0, len(articles), 25):
            batch = articles[start : start + 25]
            changed = store.write(Batch(tagged=batch))
            observed = stored_observations(store.connection, changed)
            fired = engine.evaluate(state, counts, observed, batch[-1].article.published_at).alerts
            store.write(Batch(alerts=fired))
        checked, rules_fired = 0, set()
        for alert_id, rule_name, value, evidence in store.query(
            "SELECT a.id, a.rule, a.value, d.evidence FROM alerts a JOIN alert_details d ON d.alert_id = a.id"
        ).rows:
            query = json.loads(evidence)["value_sql"]
            assert query is not None, (alert_id, rule_name)
            (recomputed,) = store.query(query).rows[0]
            assert math.isclose(float(recomputed or 0.0), value, rel_tol=1e-9, abs_tol=1e-8), (alert_id, query)
            checked += 1
            rules_fired.add(rule_name)
    assert checked > 50
    assert {rule.name for rule in rules if not isinstance(rule.condition, Threshold)} <= rules_fired


def test_a_first_seen_alerts_value_sql_finds_no_earlier_article_naming_the_entity(tmp_path: Path) -> None:
    """Three days of capex coverage naming AMD, then Google's first capex article: the alert's ``value_sql``
    gives 1 (no capex article named Google in the rule's two days before), and 0 once such an article is stored."""
    engine = RuleEngine([Rule("new-in-capex", FirstSeen("capex", days=2))])
    state: dict[str, Any] = {}
    counts = BucketCounts({}, RETENTION)

    def item(number: int, day: int, company: str) -> TaggedArticle:
        published = T0 + timedelta(days=day, hours=number % 12)
        article = Article(
            id=f"f{number}", url=f"https://x.test/f{number}", title=f"{company} raises its data-centre budget again",
            summary="", source="wire", connector="rss", published_at=published, fetched_at=published,
        )  # fmt: skip
        return TaggedArticle(article, ("capex",), {"capex": 0.9}, "v1", T0)

    stream = [item(number, number // 2, "AMD") for number in range(6)] + [item(6, 3, "Google")]
    with Store.open(tmp_path / "s.duckdb", derivation=Derivation(Gazetteer(), (), BaselineParams())) as store:
        for tagged in stream:
            observed = stored_observations(store.connection, store.write(Batch(tagged=[tagged])))
            store.write(Batch(alerts=engine.evaluate(state, counts, observed, tagged.article.published_at).alerts))
        rows = store.query("SELECT a.value, d.evidence FROM alerts a JOIN alert_details d ON d.alert_id = a.id").rows
        assert [(value, json.loads(evidence)["values"]) for value, evidence in rows] == [(1.0, {"first_seen": 1.0})]
        query = json.loads(rows[0][1])["value_sql"]
        assert store.query(query).rows == [(1.0,)]
        store.write(Batch(tagged=[item(7, 2, "Google")]))  # a report of the day before, stored late
        assert store.query(query).rows == [(1.0,)]  # the query counts what was stored when the alert was
        assert store.query(query.split(" AND a.stored_at")[0]).rows == [(0.0,)]
