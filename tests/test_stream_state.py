"""The rules stage's state in its tables: bucket counts from id sets, and writes that reach the changelog once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stackwatch.pipeline.roles.agents.common import BufferedTable
from stackwatch.signals.counts import SHARDS, BucketCounts
from stackwatch.signals.indicators import hits_for
from stackwatch.signals.messages import MessageError, Observation, Observations

NOW = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)


class RecordingTable(dict[str, Any]):
    """A dict that remembers every write, as a changelog would."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def observed(article_id: str, *labels: str, hours_ago: float = 1.0) -> Observation:
    return Observation(article_id, "wire", NOW - timedelta(hours=hours_ago), labels, ("Nvidia",))


def hits(*items: Observation) -> list[Any]:
    return [hit for item in items for hit in hits_for(item)]


def test_a_bucket_counts_each_article_once_however_often_it_arrives() -> None:
    counts = BucketCounts({})
    first = counts.add(hits(observed("a1", "edge"), observed("a2", "edge")), NOW)
    again = counts.add(hits(observed("a1", "edge"), observed("a2", "edge")), NOW)
    assert [(u.window, u.value) for u in first] == [("1h", 2.0), ("1d", 2.0)]
    assert [(u.window, u.value) for u in again] == [("1h", 2.0), ("1d", 2.0)]


def test_one_update_per_touched_bucket_carries_its_full_count() -> None:
    counts = BucketCounts({})
    updates = counts.add(hits(*(observed(f"a{n}", "capex", "edge") for n in range(40))), NOW)
    assert sorted((u.dynamic, u.window, u.value) for u in updates) == [
        ("capex", "1d", 40.0),
        ("capex", "1h", 40.0),
        ("edge", "1d", 40.0),
        ("edge", "1h", 40.0),
    ]


def test_a_big_bucket_is_spread_over_shards_so_a_batch_rewrites_a_small_part() -> None:
    table = RecordingTable()
    counts = BucketCounts(table)
    counts.add(hits(*(observed(f"a{n}", "edge") for n in range(1000))), NOW)
    table.writes.clear()
    counts.add(hits(observed("late-1", "edge")), NOW)
    assert len(table.writes) == 2  # one shard of the hour bucket, one of the day bucket
    assert max(len(members) for members in table.values()) < 1000 / SHARDS * 2
    assert counts.add(hits(observed("late-1", "edge")), NOW)[0].value == 1001.0


def test_buckets_past_retention_are_neither_counted_nor_kept() -> None:
    counts = BucketCounts({}, retention=timedelta(days=1))
    assert counts.add(hits(observed("old", "edge", hours_ago=24 * 5)), NOW) == []
    counts.add(hits(observed("a1", "edge", hours_ago=30)), NOW - timedelta(hours=29))
    assert counts.sweep(NOW + timedelta(days=3)) == 2
    assert counts.table == {}


def test_buffered_writes_reach_the_table_once_per_key_on_flush() -> None:
    table = RecordingTable()
    table["kept"] = 1
    table.writes.clear()
    buffered = BufferedTable(table)
    for value in range(5):
        buffered["series"] = value
    del buffered["kept"]
    assert buffered["series"] == 4
    assert "kept" not in buffered
    assert table["kept"] == 1  # nothing reaches the table before the flush
    assert sorted(buffered) == ["series"]
    buffered.flush()
    assert table.writes == ["series"]
    assert table == {"series": 4}


def test_an_observation_batch_round_trips_and_names_a_bad_item() -> None:
    merged = replace(observed("a3", "capex"), story_id="s2", former_stories=("s1",), title="Gulf <b>deal</b>")
    batch = Observations((observed("a1", "edge"), observed("a2"), merged))
    assert Observations.from_dict(batch.to_dict()) == batch
    broken = batch.to_dict()
    broken["items"][1]["labels"] = "edge"
    with pytest.raises(MessageError, match=r"^items\[1\]\.labels"):
        Observations.from_dict(broken)
