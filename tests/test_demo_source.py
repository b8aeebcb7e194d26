"""The demo source on its bundled timeline (dated back from its first play, oldest first, the same after a
restart), and the guide `up` prints when it is configured."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from stackwatch.connectors.base import PollResult
from stackwatch.connectors.demo import DemoSource, demo_records
from stackwatch.pipeline.process.guide import DEMO_QUERIES, first_run_guide
from stackwatch.settings import settings_from_mapping


def poll(source: DemoSource, checkpoint: dict[str, Any]) -> PollResult:
    return asyncio.run(source.poll(checkpoint))


def play(source: DemoSource) -> list[PollResult]:
    results: list[PollResult] = []
    checkpoint: dict[str, Any] = {}
    while True:
        result = poll(source, checkpoint)
        if not result.articles:
            return results
        results.append(result)
        checkpoint = dict(result.checkpoint)


def test_items_are_dated_back_from_the_first_play_and_carry_their_outlet_as_source() -> None:
    first = poll(DemoSource("demo", per_poll=20), {})
    anchor = datetime.fromisoformat(first.checkpoint["anchor"])
    records = [json.loads(line) for line in demo_records()[:20]]
    assert len(first.articles) == 20
    for article, record in zip(first.articles, records, strict=True):
        assert article.published_at == anchor - timedelta(hours=record["age_hours"])
        assert article.source == f"demo:{record['outlet']}"
        assert article.connector == "demo"
        assert article.title == record["title"]


def test_the_whole_timeline_plays_once_oldest_first_in_polls_of_per_poll() -> None:
    results = play(DemoSource("demo", per_poll=50))
    articles = [article for result in results for article in result.articles]
    assert len(articles) == len(demo_records())
    assert [len(result.articles) for result in results[:-1]] == [50] * (len(results) - 1)
    moments = [article.published_at for article in articles]
    assert moments == sorted(moments)
    assert len({article.id for article in articles}) == len(articles)
    assert moments[-1] - moments[0] >= timedelta(weeks=16)
    assert not any(result.more for result in results)  # one poll per tick: batches never overtake each other


def test_a_restart_from_the_checkpoint_stamps_every_item_as_before() -> None:
    source = DemoSource("demo", per_poll=20)
    first = poll(source, {})
    second = poll(source, dict(first.checkpoint))
    again = poll(DemoSource("demo", per_poll=20), dict(first.checkpoint))  # a new process, the stored checkpoint
    assert [(a.id, a.published_at) for a in again.articles] == [(a.id, a.published_at) for a in second.articles]
    assert again.checkpoint == second.checkpoint


def test_a_checkpoint_with_a_bad_anchor_starts_a_new_one_instead_of_failing() -> None:
    result = poll(DemoSource("demo", per_poll=5), {"position": 5, "anchor": "not a time"})
    assert len(result.articles) == 5
    datetime.fromisoformat(result.checkpoint["anchor"])


def test_the_first_run_guide_appears_only_with_a_demo_source_and_never_prints_a_webhook_url() -> None:
    demo = settings_from_mapping(
        {
            "web": {"host": "0.0.0.0", "port": 6066},
            "sources": [{"name": "demo", "type": "demo"}],
            "webhooks": [{"name": "ops", "url": "http://127.0.0.1:9000/hook?token=hidden"}],
        },
        environ={},
    )
    text = first_run_guide(demo, web_port=7000, config_file=Path("elsewhere.yaml"))
    assert text is not None
    assert "http://127.0.0.1:7000/dashboard/" in text
    assert "receive --port 9000    # webhook ops" in text
    assert "hidden" not in text
    assert text.count(' sql -c elsewhere.yaml "SELECT') == len(DEMO_QUERIES)
    feeds = settings_from_mapping({"sources": [{"name": "f", "type": "file", "path": "a.jsonl"}]}, environ={})
    assert first_run_guide(feeds, web_port=7000, config_file=None) is None
