"""The rule engine on scripted indicator sequences: pure values, no broker, no store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from stackwatch.errors import ConfigError
from stackwatch.settings import settings_from_mapping
from stackwatch.signals.alerting import Route, route
from stackwatch.signals.composite import CompositeIndex
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
from stackwatch.signals.entity_rules import cooccurrence_count, cooccurs, first_seen
from stackwatch.signals.messages import Alert, IndicatorUpdate, Observation
from stackwatch.signals.rules import RuleEngine, replay, replay_observations

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


def hour(n: int) -> datetime:
    return T0 + timedelta(hours=n)


def counts(dynamic: str, values: list[float], window: str = "1h") -> list[IndicatorUpdate]:
    """One bucket per value, each bucket's count rising one article at a time (as the stream emits them)."""
    width = timedelta(hours=1) if window == "1h" else timedelta(days=1)
    updates = []
    for index, value in enumerate(values):
        for partial in range(1, int(value) + 1):
            updates.append(IndicatorUpdate("article_count", dynamic, window, T0 + width * index, float(partial)))
    return updates


def fired(alerts: list[Alert]) -> list[tuple[str, str, int]]:
    return [(a.rule, a.status, int((a.bucket_start - T0).total_seconds() // 3600)) for a in alerts]


def test_a_threshold_fires_once_per_episode_and_resolves_when_it_stops_holding() -> None:
    engine = RuleEngine([Rule("surge", Threshold("capex", threshold=3))])
    alerts = replay(engine, counts("capex", [1, 3, 5, 4, 1, 2]))
    assert fired(alerts) == [("surge", "firing", 1), ("surge", "resolved", 4)]
    assert alerts[0].dedup_key == "surge|capex|1h"
    assert alerts[0].labels["alertname"] == "surge"
    assert alerts[0].values == {"article_count": 3.0}
    assert alerts[0].id != alerts[1].id


def test_for_needs_that_many_consecutive_buckets() -> None:
    engine = RuleEngine([Rule("surge", Threshold("capex", threshold=3), for_count=3)])
    assert fired(replay(engine, counts("capex", [3, 3, 0, 3, 3, 3, 3, 1, 1]))) == [
        ("surge", "firing", 5),
        ("surge", "resolved", 7),
    ]


def test_cooldown_mutes_a_second_episode_and_its_resolution() -> None:
    rule = Rule("surge", Threshold("capex", threshold=2), cooldown=timedelta(hours=4))
    alerts = replay(RuleEngine([rule]), counts("capex", [2, 1, 2, 1, 1, 1, 2, 1, 1]))
    # fires at 0, resolves at 1; the episode at 2 is inside the cooldown (muted, no resolution); 6 is after it
    assert fired(alerts) == [
        ("surge", "firing", 0),
        ("surge", "resolved", 1),
        ("surge", "firing", 6),
        ("surge", "resolved", 7),
    ]


def test_keep_firing_holds_a_flapping_series_as_one_episode() -> None:
    flapping = [3, 1, 3, 2, 3, 1, 1, 1, 3]
    plain = replay(RuleEngine([Rule("surge", Threshold("capex", threshold=3))]), counts("capex", flapping))
    assert len(plain) == 7  # four firings, the first three resolved an hour later
    kept = replay(
        RuleEngine([Rule("surge", Threshold("capex", threshold=3), keep_firing=2)]), counts("capex", flapping)
    )
    # below the threshold for one or two hours in a row keeps it firing; the third hour resolves it
    assert fired(kept) == [("surge", "firing", 0), ("surge", "resolved", 7), ("surge", "firing", 8)]


def test_keep_firing_counts_every_empty_bucket_of_a_gap() -> None:
    engine = RuleEngine([Rule("surge", Threshold("capex", threshold=2), keep_firing=2)])
    # hours 1 to 3 hold no article: three buckets below the threshold, so hour 1's verdict resolves it
    assert fired(replay(engine, counts("capex", [2, 0, 0, 0, 1]))) == [("surge", "firing", 0), ("surge", "resolved", 1)]


def test_keep_firing_for_is_a_duration_in_buckets_and_refused_where_nothing_resolves() -> None:
    rules = settings_from_mapping(
        {
            "rules": [
                {"name": "r", "kind": "threshold", "dynamic": "capex", "value": 3, "keep_firing_for": "150m"},
                {
                    "name": "d",
                    "kind": "threshold",
                    "dynamic": "capex",
                    "value": 3,
                    "window": "1d",
                    "keep_firing_for": "2d",
                },
            ]
        },
        secrets=False,
    ).rules
    assert [rule.to_rule().keep_firing for rule in rules] == [3, 2]  # 150 minutes: three hourly buckets
    for kind in (
        {"kind": "first_seen", "dynamic": "capex"},
        {"kind": "story", "value": 3},
        {"kind": "watch", "dynamic": "capex"},
    ):
        with pytest.raises(ConfigError, match=r"rules\[0\]\.keep_firing_for: not used by"):
            settings_from_mapping({"rules": [{"name": "r", **kind, "keep_firing_for": "1h"}]}, secrets=False)


def test_replayed_updates_fire_nothing_twice() -> None:
    engine = RuleEngine([Rule("surge", Threshold("capex", threshold=2))])
    updates = counts("capex", [3, 3])
    state: dict[str, Any] = {}
    first = [a for u in updates for a in engine.apply(state, u)]
    again = [a for u in updates for a in engine.apply(state, u)]
    assert len(first) == 1
    assert again == []


def test_a_lower_bound_waits_for_the_bucket_to_close() -> None:
    # "< 2" must not fire on a bucket's first article when the bucket ends with 5.
    engine = RuleEngine([Rule("thin", Threshold("capex", op="<", threshold=2))])
    assert fired(replay(engine, counts("capex", [5, 1, 5, 5]))) == [("thin", "firing", 1), ("thin", "resolved", 2)]


def test_spike_trend_and_composite() -> None:
    spike = Rule("spike", Spike("capex", baseline=4, threshold=3))
    trend = Rule("trend", Trend("capex", window="1h", buckets=2, threshold=1.0))
    index = Rule("index", Composite(CompositeIndex("idx", {"capex": 1.0, "edge": 2.0}, "article_count"), threshold=7))
    engine = RuleEngine([spike, trend, index])
    updates = counts("capex", [1, 1, 1, 1, 6]) + counts("edge", [0, 0, 0, 0, 1])
    updates.sort(key=lambda u: u.bucket_start)
    got = fired(replay(engine, updates))
    assert ("spike", "firing", 4) in got
    assert ("trend", "firing", 4) in got
    assert ("index", "firing", 4) in got


def test_spikes_and_trends_wait_until_the_stream_covers_their_baseline() -> None:
    # A series' first bucket is partial and has no baseline before it: against that, 3 articles look like a
    # surge. A spike is judged once its series has `baseline` buckets before the bucket, a trend `buckets`.
    spike = Rule("spike", Spike("capex", baseline=4, threshold=2))
    trend = Rule("trend", Trend("capex", window="1h", buckets=2, threshold=0.5))
    got = fired(replay(RuleEngine([spike, trend]), counts("capex", [3, 3, 1, 1, 1, 6])))
    assert ("spike", "firing", 0) not in got
    assert ("trend", "firing", 1) not in got
    assert ("spike", "firing", 5) in got
    assert ("trend", "firing", 5) in got
    assert (spike.warmup, trend.warmup) == (4, 2)


def test_a_trend_that_holds_goes_on_holding_through_a_bucket_with_no_articles() -> None:
    # An empty bucket is judged by the rule's own value there: a count's is 0, but momentum (fast EWMA - slow
    # EWMA, the store's) at a 0 after a surge stays positive. Judging it as 0 made a rising trend fire and resolve
    # on alternate days.
    trend = Rule("trend", Trend("capex", window="1h", buckets=2, threshold=0.5))
    got = fired(replay(RuleEngine([trend]), counts("capex", [1, 1, 1, 1, 8, 0, 8, 1])))
    assert got == [("trend", "firing", 4)]  # hour 5: fast 2.25 - slow 1.44 = 0.82


def test_a_quiet_dynamic_alerts_once_the_rest_of_the_stream_moves_on() -> None:
    engine = RuleEngine([Rule("gap", Quiet("capex", timedelta(hours=3)))])
    updates = counts("capex", [1]) + counts("edge", [1, 1, 1, 1, 1, 1])
    updates += [IndicatorUpdate("article_count", "capex", "1h", hour(6), 1.0), *counts("edge", [0] * 7 + [1])]
    updates.sort(key=lambda u: u.bucket_start)
    assert fired(replay(engine, updates)) == [("gap", "firing", 3), ("gap", "resolved", 6)]


def test_labels_route_alerts_to_more_webhooks() -> None:
    routes = [Route({"team": "markets"}, ("chat",)), Route({"severity": "critical"}, ("pager",))]
    rule = Rule(
        "surge", Threshold("capex", threshold=1), severity="critical", labels={"team": "markets"}, webhooks=("ops",)
    )
    engine = RuleEngine([rule], router=lambda labels: route(labels, routes))
    (alert,) = replay(engine, counts("capex", [1]))
    assert alert.webhooks == ("ops", "chat", "pager")


def test_entity_rules() -> None:
    assert cooccurs({"exclusivity"}, {"Microsoft", "OpenAI"}, "exclusivity", ["microsoft"])
    assert not cooccurs({"capex"}, {"Microsoft"}, "exclusivity", ["Microsoft"])
    assert not cooccurs({"exclusivity"}, {"Microsoft"}, "exclusivity", ["Microsoft", "Google"])
    assert cooccurs({"exclusivity"}, {"Microsoft"}, "exclusivity", ["Microsoft", "Google"], every=False)
    articles = [({"exclusivity"}, {"Microsoft"}), ({"exclusivity"}, set()), ({"capex"}, {"Microsoft"})]
    assert cooccurrence_count(articles, "exclusivity", ["Microsoft"]) == 1
    seen = {"exclusivity|microsoft": "2026-04-01"}
    assert first_seen("Google", "exclusivity", "2026-05-01", seen, days=30)
    assert first_seen("Microsoft", "exclusivity", date(2026, 5, 2), seen, days=30)
    assert not first_seen("Microsoft", "exclusivity", "2026-04-20", seen, days=30)


def observed(article_id: str, at: datetime, labels: tuple[str, ...], entities: tuple[str, ...]) -> Observation:
    return Observation(article_id, "wire", at, labels, entities)


def test_a_cooccurrence_fires_when_enough_articles_show_the_dynamic_with_every_entity() -> None:
    rule = Rule("msft-lock-in", Cooccurrence("exclusivity", ("Microsoft", "OpenAI"), threshold=2), severity="critical")
    engine = RuleEngine([rule])
    day = T0 + timedelta(hours=9)
    alerts = replay_observations(
        engine,
        [
            observed("a1", day, ("exclusivity",), ("Microsoft", "OpenAI")),
            observed("a2", day, ("exclusivity",), ("Microsoft",)),  # one entity only
            observed("a3", day, ("capex",), ("Microsoft", "OpenAI")),  # another dynamic
            observed("a1", day, ("exclusivity",), ("Microsoft", "OpenAI")),  # redelivered
            observed("a4", day, ("exclusivity", "capex"), ("OpenAI", "Microsoft", "Oracle")),
        ],
    )
    assert [(a.rule, a.status, a.dynamic, a.value) for a in alerts] == [("msft-lock-in", "firing", "exclusivity", 2.0)]
    assert alerts[0].labels["entities"] == "Microsoft & OpenAI"
    assert alerts[0].bucket_start == T0


def test_a_cooccurrence_of_stories_counts_one_event_covered_by_three_outlets_once() -> None:
    """Three outlets' reports of one Microsoft-OpenAI event and one report of another: two stories, four articles."""
    stories = Rule(
        "lock-in-events", Cooccurrence("exclusivity", ("Microsoft", "OpenAI"), threshold=2, indicator="story_count")
    )
    articles = Rule("lock-in-articles", Cooccurrence("exclusivity", ("Microsoft", "OpenAI"), threshold=2))
    day = T0 + timedelta(hours=9)

    def report(article_id: str, story: str, source: str) -> Observation:
        return Observation(article_id, source, day, ("exclusivity",), ("Microsoft", "OpenAI"), story_id=story)

    one_event = [report("a1", "s1", "wire"), report("a2", "s1", "tech"), report("a3", "s1", "cloud")]
    alerts = replay_observations(RuleEngine([stories, articles]), one_event)
    assert [(a.rule, a.value) for a in alerts] == [("lock-in-articles", 2.0)]  # the story rule sees one event
    alerts = replay_observations(RuleEngine([stories, articles]), [*one_event, report("b1", "s2", "wire")])
    fired = {a.rule: (a.value, a.indicator, a.labels["entities"]) for a in alerts}
    assert fired["lock-in-events"] == (2.0, "cooccurrence_stories", "Microsoft & OpenAI")
    assert "count of distinct stories" in next(a.message for a in alerts if a.rule == "lock-in-events")
    with pytest.raises(ValueError, match="counts article_count or story_count"):
        Cooccurrence("exclusivity", ("Microsoft",), indicator="share")


def test_any_entity_is_enough_when_every_is_off() -> None:
    engine = RuleEngine([Rule("chips", Cooccurrence("decoupling", ("AMD", "Broadcom"), every=False))])
    alerts = replay_observations(engine, [observed("a1", T0, ("decoupling",), ("Broadcom",))])
    assert [a.rule for a in alerts] == ["chips"]


def test_first_seen_alerts_on_an_entity_new_to_a_dynamic_once_armed() -> None:
    engine = RuleEngine([Rule("new-in-edge", FirstSeen("edge", days=7), dedup="{rule}|{entity}")])
    days = [T0 + timedelta(days=n) for n in range(20)]
    alerts = replay_observations(
        engine,
        [
            observed("a0", days[0], ("edge",), ("Apple",)),  # day 0: the rule starts watching
            observed("a1", days[3], ("edge",), ("Qualcomm",)),  # new, but not armed yet (3 < 7 days watched)
            observed("a2", days[8], ("edge",), ("Qualcomm", "Arm")),  # Arm is new and the rule is armed
            observed("a3", days[8], ("edge",), ("Arm",)),  # the same day again: nothing
            observed("a4", days[9], ("capex",), ("Meta",)),  # another dynamic
            observed("a5", days[14], ("edge",), ("Qualcomm", "Apple")),  # Apple: 14 days since; Qualcomm: 6
        ],
    )
    assert [(a.labels["entity"], a.bucket_start) for a in alerts] == [("Arm", days[8]), ("Apple", days[14])]
    assert alerts[0].message == "Arm appears in edge for the first time in 7 days"
    assert len({a.id for a in alerts}) == 2
    assert (
        replay_observations(engine, [observed("a2", days[8], ("edge",), ("Arm",))]) == []
    )  # a fresh state is not armed


def test_a_quiet_source_alerts_once_the_rest_of_the_stream_moves_on() -> None:
    gap = Rule("blog-gap", Quiet("*", timedelta(hours=3), source="blog"))
    engine = RuleEngine([gap])
    items = [Observation("b0", "blog", hour(0), ("edge",))]
    items += [Observation(f"w{n}", "wire", hour(n), ("capex",)) for n in range(1, 7)]
    items += [Observation("b7", "blog", hour(7), ()), Observation("w8", "wire", hour(8), ("capex",))]
    alerts = replay_observations(engine, items)
    # The blog's article at 07:00 (no dynamic: it moves no clock) ends the gap at the next judged bucket.
    assert fired(alerts) == [("blog-gap", "firing", 3), ("blog-gap", "resolved", 6)]
    assert alerts[0].labels["source"] == "blog"
    assert alerts[0].dynamic == "source:blog"


def reported(
    article_id: str, source: str, story: str, at: datetime, labels: tuple[str, ...] = ("capex",)
) -> Observation:
    """An article as the sink reports it: stored, and grouped into ``story``."""
    return Observation(article_id, source, at, labels, ("Oracle",), story_id=story)


def test_a_story_rule_fires_once_when_one_story_reaches_the_outlets() -> None:
    engine = RuleEngine([Rule("wide-capex", StoryReach("capex", threshold=3))])
    at = T0 + timedelta(hours=9)
    alerts = replay_observations(
        engine,
        [
            reported("a1", "wire", "s1", at),
            reported("a2", "wire", "s1", at + timedelta(hours=1)),  # a second article, the same outlet
            reported("b1", "blog", "s2", at),  # another story
            reported("a3", "daily", "s1", at + timedelta(hours=2)),
            reported("a3", "daily", "s1", at + timedelta(hours=2)),  # redelivered
            reported("a4", "edge-only", "s1", at + timedelta(hours=3), ("edge",)),  # outside the scope
            reported("a5", "chips", "s1", at + timedelta(hours=4)),  # third outlet
            reported("a6", "press", "s1", at + timedelta(hours=5)),  # fourth: the story has fired
        ],
    )
    assert [(a.rule, a.status, a.value, a.labels["story"]) for a in alerts] == [("wide-capex", "firing", 3.0, "s1")]
    assert alerts[0].message == "A story in capex is reported by 3 outlets (chips, daily, wire), at or above 3"
    assert alerts[0].bucket_start == T0  # the day of the story's first article
    assert alerts[0].dedup_key == "wide-capex|capex|1d"  # the default template: the settings' is {rule}|{story}


def test_a_story_that_fired_and_is_merged_into_another_does_not_fire_again_under_the_survivors_id() -> None:
    engine = RuleEngine([Rule("wide", StoryReach("capex", threshold=2), dedup="{rule}|{story}")])
    at = T0 + timedelta(hours=9)
    state: dict[str, Any] = {}
    fired = [
        *engine.observe(state, reported("a1", "wire", "s1", at)),
        *engine.observe(state, reported("a2", "blog", "s1", at)),  # s1 reaches two outlets: it fires
        *engine.observe(state, reported("b1", "daily", "s2", at)),  # another write-up, its own story for now
    ]
    assert [alert.labels["story"] for alert in fired] == ["s1"]
    # A later article links both: the store merges s1 into s2 and sends their articles again under s2.
    merged = [replace(reported(name, source, "s2", at), former_stories=("s1",)) for name, source in
              [("a1", "wire"), ("a2", "blog"), ("c1", "press")]]  # fmt: skip
    assert [alert for item in merged for alert in engine.observe(state, item)] == []
    assert set(state["s|wide"]) == {"s2"}  # s1's members and its firing now belong to s2
    assert engine.observe(state, reported("d1", "chips", "s2", at)) == []
    # Without the merge named, s2 would count as a story of its own that never fired.
    fresh: dict[str, Any] = {}
    unmerged = [reported("a1", "wire", "s1", at), reported("a2", "blog", "s1", at)]
    unmerged += [replace(item, former_stories=()) for item in merged]
    again = [alert for item in unmerged for alert in engine.observe(fresh, item)]
    assert [alert.labels["story"] for alert in again] == ["s1", "s2"]


def headline(article_id: str, title: str, at: datetime, labels: tuple[str, ...] = ("capex",), *entities: str,
             source: str = "wire") -> Observation:  # fmt: skip
    return Observation(article_id, source, at, labels, entities, title=title)


def test_a_watch_rule_sends_every_new_matching_article_once() -> None:
    engine = RuleEngine([Rule("gulf-deals", Watch("capex", ("NVIDIA", "AMD"), pattern=r"\b(gulf|saudi)\b"))])
    at = T0 + timedelta(days=10)
    alerts = replay_observations(
        engine,
        [
            headline("a1", "Saudi fund orders NVIDIA chips", at, ("capex",), "NVIDIA"),
            headline("a2", "Gulf build-out: AMD wins a cluster", at + timedelta(hours=1), ("capex",), "AMD"),
            headline("a2", "Gulf build-out: AMD wins a cluster", at + timedelta(hours=1), ("capex",), "AMD"),  # again
            headline("a3", "Gulfstream jets sell well", at, ("capex",), "NVIDIA"),  # a word, not the region
            headline("a4", "Saudi fund orders Intel chips", at, ("capex",), "Intel"),  # no watched entity
            headline("a5", "Saudi fund orders NVIDIA chips", at, ("edge",), "NVIDIA"),  # another dynamic
            headline("a6", "SAUDI order of NVIDIA gear, reported late", at - timedelta(days=3), ("capex",), "nvidia"),
        ],
    )
    assert [(a.labels["article"], a.status, a.value) for a in alerts] == [("a1", "firing", 1.0), ("a2", "firing", 1.0),
                                                                          ("a2", "firing", 1.0)]  # fmt: skip
    assert alerts[1].id == alerts[2].id  # the same article: one alert, which the store keeps once
    assert alerts[0].message == "New in capex: Saudi fund orders NVIDIA chips (wire)"
    assert alerts[0].kind == "watch"
    assert alerts[0].bucket_start == at.replace(hour=0)  # the article's day


def test_a_watch_rule_on_a_source_alone_matches_any_article_from_it() -> None:
    engine = RuleEngine([Rule("lab-blog", Watch(source="lab-blog"))])
    at = T0 + timedelta(days=1)
    alerts = replay_observations(
        engine, [headline("b1", "Anything at all", at, (), source="lab-blog"), headline("b2", "Other", at, ())]
    )
    assert [alert.labels["article"] for alert in alerts] == ["b1"]
    assert alerts[0].message == "New in all articles: Anything at all (lab-blog)"


def test_a_story_rule_counts_articles_and_forgets_stories_older_than_its_days() -> None:
    engine = RuleEngine(
        [Rule("big", StoryReach(indicator="article_count", threshold=2, days=1), dedup="{rule}|{story}")]
    )
    state: dict[str, Any] = {}
    first = engine.observe(state, reported("a1", "wire", "s1", T0))
    assert first == []
    assert engine.observe(state, reported("x1", "wire", "s9", T0 + timedelta(days=3))) == []
    assert set(state["s|big"]) == {"s9"}  # s1 began more than a day before the newest article: forgotten
    fired_now = engine.observe(state, reported("x2", "wire", "s9", T0 + timedelta(days=3, hours=1)))
    assert [(a.value, a.dedup_key) for a in fired_now] == [(2.0, "big|s9")]
