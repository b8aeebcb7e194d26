"""Rule state rebuilt from stored articles: a restart in the middle of a stream changes nothing it alerts about.

Pure values: the engine, the replay, and the filter of alerts lost in flight; no broker, no store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stackwatch.settings import settings_from_mapping
from stackwatch.settings.alerts import RULE_KINDS, engine_rules
from stackwatch.signals.conditions import FirstSeen, Quiet, Rule, Spike, Threshold, Trend, Watch
from stackwatch.signals.counts import BucketCounts
from stackwatch.signals.messages import Alert, Observation
from stackwatch.signals.rule_state import Notice, StoredObservation, lookback, rebuild, reconcile, unrecorded
from stackwatch.signals.rules import RuleEngine

T0 = datetime(2026, 5, 1, tzinfo=UTC)
RETENTION = timedelta(days=3650)

RULES = [
    Rule("three-an-hour", Threshold("decoupling", threshold=3)),
    Rule("calm-down", Threshold("capex", threshold=1), cooldown=timedelta(hours=6)),
    Rule("two-hours-running", Threshold("edge", threshold=1), for_count=2),
    Rule("new-in-edge", FirstSeen("edge", days=2), dedup="{rule}|{entity}"),
    Rule("capex-spike", Spike("capex", baseline=6, threshold=2)),
]


def article(number: int, minutes: int, labels: tuple[str, ...], entities: tuple[str, ...] = ()) -> Observation:
    return Observation(f"a{number}", "wire", T0 + timedelta(minutes=minutes), labels, entities)


def stream() -> list[StoredObservation]:
    """Four days of a small stream with a decoupling burst, a capex spike and an entity new to edge on day 3,
    stored in batches of three, each batch a minute after its last article."""
    timeline: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = []
    for step in range(110):  # the background: one article every 50 minutes
        labels = (("capex",), ("edge",), ("capex", "edge"), ("decoupling",))[step % 4]
        timeline.append(
            (step * 50 + 7, labels, ("Apple", "Qualcomm")[step % 2 : step % 2 + 1] if "edge" in labels else ())
        )
    timeline += [(34 * 60 + 5 * n, ("decoupling",), ()) for n in range(5)]  # day 1, 10:00: a burst
    timeline += [(62 * 60 + 8 * n, ("capex",), ()) for n in range(6)]  # day 2, 14:00: a capex spike
    timeline += [(80 * 60 + 3, ("edge",), ("Arm",))]  # day 3: Arm, new to edge, once the rule is armed
    items = [
        article(number, minute, labels, entities) for number, (minute, labels, entities) in enumerate(sorted(timeline))
    ]
    stored = []
    for start in range(0, len(items), 3):
        batch = items[start : start + 3]
        stored += [StoredObservation(batch[-1].published_at + timedelta(minutes=1), item) for item in batch]
    return stored


def run(engine: RuleEngine, history: list[StoredObservation], state: dict[str, Any], table: dict[str, Any]) -> list:
    counts = BucketCounts(table, RETENTION)
    alerts: list[Alert] = []
    for start in range(0, len(history), 3):
        batch = history[start : start + 3]
        alerts += engine.evaluate(state, counts, [item.observation for item in batch], batch[0].stored_at).alerts
    return alerts


def test_a_restart_anywhere_fires_exactly_what_an_uninterrupted_stream_fires() -> None:
    engine = RuleEngine(RULES)
    history = stream()
    uninterrupted = run(engine, history, {}, {})
    assert {alert.rule for alert in uninterrupted} == {rule.name for rule in RULES}
    for cut in (3, 30, 60, 93, 111, 114, 120):
        before, after = history[:cut], history[cut:]
        rebuilt = rebuild(engine, before, retention=RETENTION)
        assert rebuilt.replayed == cut
        resumed = run(engine, after, rebuilt.state, rebuilt.counts)
        assert [a.id for a in rebuilt.alerts + resumed] == [a.id for a in uninterrupted], f"restart after {cut}"


def test_alerts_lost_in_flight_are_found_and_older_ones_are_left_alone() -> None:
    engine = RuleEngine(RULES)
    fired = rebuild(engine, stream(), retention=RETENTION).alerts
    by_series: dict[tuple[str, str], list[Alert]] = {}
    for alert in fired:
        by_series.setdefault((alert.rule, alert.dedup_key), []).append(alert)
    series = max(by_series.values(), key=len)
    assert len(series) >= 3
    # The store received every alert of the series but its last: only that one is missing.
    kept = series[:-1]
    newest = {(kept[-1].rule, kept[-1].dedup_key): kept[-1].bucket_start}
    assert unrecorded(series, newest, {alert.id for alert in kept}) == [series[-1]]
    # An older alert the stream judged differently (it is not stored) is not sent at a restart.
    assert unrecorded(series[:1], {(kept[-1].rule, kept[-1].dedup_key): series[-1].bucket_start}, set()) == []
    # A series the store knows nothing of: every replayed alert of it is missing.
    assert unrecorded(series, {}, set()) == series


def test_a_replayed_batch_counts_nothing_twice() -> None:
    engine = RuleEngine(RULES)
    history = stream()
    rebuilt = rebuild(engine, history[:30], retention=RETENTION)
    again = run(engine, history[27:30], rebuilt.state, rebuilt.counts)  # the last batch arrives once more
    assert again == []


def test_a_firing_the_receivers_were_sent_survives_a_replay_that_judges_it_otherwise() -> None:
    """The agent reads its own batches, not the store's transactions: here it saw hour 10's three articles together
    (and fired), while the store wrote one of them after an hour-11 article, so the replay judged hour 10 at two."""
    engine = RuleEngine([Rule("three-an-hour", Threshold("decoupling", threshold=3))])
    hour_10 = [article(n, 600 + 10 * n, ("decoupling",)) for n in range(3)]
    hour_11 = [article(10 + n, 660 + 10 * n, ("decoupling",)) for n in range(3)]
    later = [article(20, 725, ("decoupling",)), article(21, 785, ("decoupling",))]  # a quiet hour 12, then 13
    agent_batches = [hour_10, hour_11[:1], hour_11[1:], later[:1], later[1:]]

    def agent(batches: list[list[Observation]], state: dict[str, Any], table: dict[str, Any]) -> list[Alert]:
        counts = BucketCounts(table, RETENTION)
        return [
            alert for batch in batches for alert in engine.evaluate(state, counts, batch, batch[-1].published_at).alerts
        ]

    uninterrupted = agent(agent_batches, {}, {})
    assert [(a.status, a.bucket_start.hour) for a in uninterrupted] == [("firing", 10), ("resolved", 12)]
    sent = agent(agent_batches[:2], {}, {})  # the crash comes after the agent's second batch
    stored_at = T0 + timedelta(hours=12)
    store = [*hour_10[:2], hour_11[0]], [hour_10[2]]
    history = [StoredObservation(stored_at + timedelta(seconds=n), item) for n, tx in enumerate(store) for item in tx]

    rebuilt = rebuild(engine, history, retention=RETENTION)
    assert rebuilt.alerts == []  # the replay never saw hour 10 at three
    unreconciled = agent(agent_batches[2:], dict(rebuilt.state), dict(rebuilt.counts))
    assert [(a.status, a.bucket_start.hour) for a in unreconciled] == [("firing", 11), ("resolved", 12)]

    assert reconcile(rebuilt.state, [Notice.of(alert) for alert in sent]) == [
        "r|three-an-hour|three-an-hour|decoupling|1h"
    ]
    resumed = agent(agent_batches[2:], rebuilt.state, rebuilt.counts)
    assert [a.id for a in sent + resumed] == [a.id for a in uninterrupted]


def test_a_resolution_the_receivers_were_sent_ends_the_series_in_the_replayed_state() -> None:
    state: dict[str, Any] = {}
    firing = Notice("r", "r|capex|1h", T0, "firing")
    reconcile(state, [firing])
    assert reconcile(state, [firing, Notice("r", "r|capex|1h", T0 + timedelta(hours=2), "resolved")]) == [
        "r|r|r|capex|1h"
    ]
    assert state["r|r|r|capex|1h"]["firing"] is False
    assert state["r|r|r|capex|1h"]["notified"] == T0.isoformat()  # a cooldown still counts from that firing
    assert reconcile(state, [firing, Notice("r", "r|capex|1h", T0 + timedelta(hours=2), "resolved")]) == []


def test_lookback_covers_what_each_rule_reads() -> None:
    hour, day = timedelta(hours=1), timedelta(days=1)
    assert lookback([], floor=timedelta(days=3)) == timedelta(days=3)
    assert lookback([Rule("t", Threshold("capex"), for_count=3)], floor=timedelta(0)) == 4 * hour
    assert lookback([Rule("c", Threshold("capex"), cooldown=6 * hour)], floor=timedelta(0)) == 8 * hour
    assert lookback([Rule("s", Spike("capex", baseline=24))], floor=timedelta(0)) == 27 * hour
    assert lookback([Rule("m", Trend("capex", buckets=7))], floor=timedelta(0)) == 16 * day
    assert lookback([Rule("f", FirstSeen("edge", days=30))], floor=timedelta(0)) == 31 * day
    assert lookback([Rule("q", Quiet("edge", after=12 * hour))], floor=timedelta(0)) == 14 * hour
    assert lookback([Rule("k", Threshold("capex"), keep_firing=3)], floor=timedelta(0)) == 5 * hour
    assert lookback([Rule("w", Watch("capex", days=365))], floor=timedelta(0)) == day  # its state: the newest match


def test_every_rule_kind_the_settings_accept_has_a_lookback() -> None:
    """A restart replays history for every configured rule: a kind without a lookback crashed the rules agent."""
    rules = [
        {"kind": "threshold", "dynamic": "capex", "value": 3},
        {"kind": "spike", "dynamic": "capex"},
        {"kind": "trend", "dynamic": "capex"},
        {"kind": "composite", "weights": {"capex": 1}, "value": 1},
        {"kind": "silence", "dynamic": "capex", "after": "6h"},
        {"kind": "cooccurrence", "dynamic": "capex", "entities": ["AMD"]},
        {"kind": "first_seen", "dynamic": "capex"},
        {"kind": "story", "value": 3},
        {"kind": "watch", "entities": ["AMD"]},
    ]
    configured = {"rules": [{"name": f"r{number}", **rule} for number, rule in enumerate(rules)]}
    engine_kinds = {kind for kind in RULE_KINDS if kind != "source_health"}  # judged on the wall clock, not replayed
    built = engine_rules(settings_from_mapping(configured, secrets=False).rules)
    assert {rule.kind for rule in built} == engine_kinds
    assert lookback(built, floor=timedelta(0)) > timedelta(0)
