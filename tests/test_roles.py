"""Scale-out: the roles as separate processes on one broker, with two workers sharing the partitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackwatch.pipeline.kafka.broker import free_port
from tests.helpers.service import Service, pipeline_config

pytestmark = pytest.mark.integration

TOPICS = [
    ("Google signs deal to supply TPUs to Meta, reducing Nvidia reliance", "Custom silicon from Google."),
    ("Microsoft raises capex guidance to $80 billion for AI data centers", "Capital spending on data centers."),
    ("Apple expands on-device models for Apple Intelligence", "Local inference on iPhone NPUs."),
    ("Azure remains exclusive cloud provider for OpenAI API", "Exclusive cloud deal and lock-in."),
]

OVERALL_COUNTS = "indicator = 'article_count' AND entity = '*' AND source = '*' AND dynamic <> '*'"


def test_ingest_two_workers_and_a_sink_process_every_article_once(broker: str, unique: str, tmp_path: Path) -> None:
    feed = tmp_path / "articles.jsonl"
    with feed.open("w", encoding="utf-8") as out:
        for number in range(40):
            title, text = TOPICS[number % len(TOPICS)]
            out.write(json.dumps({"id": f"n{number}", "title": f"{title} ({number})", "text": text}) + "\n")
    sink_port = free_port()
    config = pipeline_config(
        tmp_path,
        [broker],
        unique,
        kafka={"partitions": 4},
        web={"host": "127.0.0.1", "port": sink_port},
        sources=[{"name": "backfill", "type": "file", "path": str(feed), "interval": "1s"}],
    )
    sink = Service(config, command="sink", web_port=sink_port)
    workers = [Service(config, command="worker", web_port=free_port(), name=f"worker{n}") for n in range(2)]
    ingest = Service(config, command="ingest", web_port=free_port())
    processes = [sink, *workers, ingest]
    try:
        sink.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[40]], timeout=180)
        sink.wait_until(
            f"SELECT sum(value) FROM indicators WHERE {OVERALL_COUNTS} AND bucket_width = '1h'",
            lambda rows: rows[0][0] is not None and rows[0][0] >= 40,
            timeout=60,
        )
        stored = sink.sql("SELECT count(DISTINCT id), count(*) FROM articles")
        labelled = dict(sink.sql("SELECT dynamic, count(*) FROM article_dynamics WHERE label GROUP BY dynamic"))
        counted = dict(
            sink.sql(
                f"SELECT dynamic, sum(value) FROM indicators WHERE {OVERALL_COUNTS} AND bucket_width = '1d' GROUP BY 1"
            )
        )
    finally:
        codes = [service.stop() for service in reversed(processes)]
    assert codes == [0, 0, 0, 0], "\n".join(service.output[-2000:] for service in processes)
    assert stored == [[40, 40]]
    assert sum(labelled.values()) >= 40
    assert counted == labelled  # every labelled article counted once, across both workers
    for service in processes:
        assert "Traceback" not in service.output
