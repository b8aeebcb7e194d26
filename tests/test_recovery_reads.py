"""What a restart reads back from a real store file to rebuild the rules' state (storage/recovery.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.signals.conditions import Rule, Spike, StoryReach, Threshold
from stackwatch.signals.indicators import bucket_start
from stackwatch.signals.messages import Article, Observation, TaggedArticle, utcnow
from stackwatch.signals.rule_state import Notice, baselines_wanted, open_since, rebuild, seeds, series_notices
from stackwatch.signals.rules import RuleEngine, replay_observations
from stackwatch.storage.recovery import recorded_alerts, stored_baselines, stored_history
from stackwatch.storage.store import Batch, Store

T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)


def test_only_the_engines_own_rules_alerts_are_read_back(tmp_path: Path) -> None:
    engine = RuleEngine([Rule("busy-capex", Threshold("capex", threshold=1)), Rule("busy-edge", Threshold("edge"))])
    fired = replay_observations(
        engine,
        [
            Observation("a1", "wire", T0, ("edge",)),  # edge fires at 09:00 and stays firing
            Observation("a2", "wire", T0 + timedelta(hours=2), ("capex",)),
        ],
    )
    assert {(a.rule, a.status) for a in fired} == {("busy-edge", "firing"), ("busy-capex", "firing")}
    with Store.open(tmp_path / "s.duckdb") as store:
        store.write(Batch(alerts=fired))
        # a rule the engine no longer runs (or a source-health rule) has nothing to rebuild
        recorded = recorded_alerts(store.connection, ["busy-capex"])
    assert {notice.rule for notice in recorded.notices} == {"busy-capex"}
    assert open_since(recorded.notices) == T0 + timedelta(hours=2)  # not busy-edge's 09:00
    assert recorded.ids == {a.id for a in fired if a.rule == "busy-capex"}


def capex_article(number: int, when: datetime) -> TaggedArticle:
    article = Article(f"c{number}", f"https://wire.test/c{number}", f"Capex {number}", "", "wire", "rss", when, when)
    return TaggedArticle(article, ("capex",), {"capex": 0.9}, "v1", when)


def test_a_restart_goes_on_from_the_stores_ewma_not_from_zero(tmp_path: Path) -> None:
    """Six days of hourly capex counts; a spike rule's series rebuilt from the last two days alone matches the
    series run from its first bucket once it starts from the store's EWMA state (``seeds``)."""
    engine = RuleEngine([Rule("capex-spike", Spike("capex", window="1h", baseline=24, threshold=100))])
    start = bucket_start(utcnow() - timedelta(days=7), "1d")  # judged when stored: now, within the retention
    retention = timedelta(days=30)
    counts = [1 + (hour * 7) % 5 for hour in range(6 * 24)]
    articles = [capex_article(hour * 10 + n, start + timedelta(hours=hour, minutes=n)) for hour, count in
                enumerate(counts) for n in range(count)]  # fmt: skip
    with Store.open(tmp_path / "s.duckdb") as store:
        for day in range(6):
            day_start = start + timedelta(days=day)
            store.write(Batch(tagged=[a for a in articles if bucket_start(a.article.published_at, "1d") == day_start]))
        whole = rebuild(engine, stored_history(store.connection, start), retention=retention)
        since = start + timedelta(days=4)
        seed = seeds(engine, stored_baselines(store.connection, baselines_wanted(engine, since)))
        seeded = rebuild(engine, stored_history(store.connection, since), retention=retention, seed=seed)
        unseeded = rebuild(engine, stored_history(store.connection, since), retention=retention)
    key = next(name for name in whole.state if name.startswith("b|capex-spike|"))
    assert set(seed) == {key}
    assert seeded.state[key]["open"] == whole.state[key]["open"]
    assert seeded.state[key]["count"] == whole.state[key]["count"] == 6 * 24 - 1
    assert seeded.state[key]["state"] == pytest.approx(whole.state[key]["state"], rel=1e-9)
    assert unseeded.state[key]["count"] == 2 * 24 - 1  # warmed up again from the replay's start
    assert unseeded.state[key]["state"] != pytest.approx(whole.state[key]["state"], rel=1e-3)


def test_story_and_first_seen_alerts_hold_no_series_to_replay_from() -> None:
    """They never resolve: were they series, the oldest would send every restart's replay back to it."""
    engine = RuleEngine([Rule("wide", StoryReach(threshold=2)), Rule("busy", Threshold("capex"))])
    notices = [
        Notice("wide", "wide|s1", T0 - timedelta(days=300), "firing"),
        Notice("busy", "busy|capex|1h", T0, "firing"),
        Notice("busy", "busy|capex|1h", T0 + timedelta(hours=1), "resolved"),
    ]
    kept = series_notices(engine, notices)
    assert [notice.rule for notice in kept] == ["busy", "busy"]
    assert open_since(kept) is None
    assert open_since(notices) == T0 - timedelta(days=300)
