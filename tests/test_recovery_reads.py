"""What a restart reads back from a real store file to rebuild the rules' state (storage/recovery.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackwatch.signals.conditions import Rule, Threshold
from stackwatch.signals.messages import Observation
from stackwatch.signals.rules import RuleEngine, replay_observations
from stackwatch.storage.recovery import recorded_alerts
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
    assert recorded.firing_since == T0 + timedelta(hours=2)  # not busy-edge's 09:00
    assert recorded.ids == {a.id for a in fired if a.rule == "busy-capex"}
