"""What the fault tests share: a stream of articles to kill a service under, and the checks of what it left.

write_articles(path, 10_000)                       # a JSONL backfill over the last 12 hours
check_store(store_path, config, receiver, 10_000)  # exact counts, indicators == rebuild, one webhook-id each
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stackwatch.storage.store import Store
from tests.helpers.http import LocalServer

__all__ = ["HEADLINES", "alert_ids", "check_store", "descendants", "still_running", "write_articles"]

HEADLINES = [
    "Meta signs deal to rent Google TPUs, cutting its reliance on Nvidia",
    "Microsoft raises capex guidance for AI data centers to $80 billion",
    "Apple expands on-device models; inference runs locally on the NPU",
    "Azure stays the exclusive cloud for OpenAI's API under the renewed deal",
    "Bakery on Main Street wins the regional sourdough prize",
]


def write_articles(path: Path, count: int, *, first: int = 0, prefix: str = "n") -> None:
    """A backfill in publication order, as a feed delivers it, over the last 12 hours."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=11)
    step = 12 * 3600 / count
    with path.open("w", encoding="utf-8") as out:
        for number in range(first, first + count):
            published = start + timedelta(seconds=(number - first) * step)
            title = f"{HEADLINES[number % len(HEADLINES)]} (item {number})"
            out.write(json.dumps({"id": f"{prefix}{number}", "title": title, "published_at": published.isoformat()}))
            out.write("\n")


def alert_ids(body: Any) -> set[str]:
    """Every alert id in a webhook body (alerts may be grouped into one notification)."""
    found: set[str] = set()
    if isinstance(body, dict):
        if isinstance(body.get("id"), str) and body["id"].startswith("alert"):
            found.add(body["id"])
        for value in body.values():
            found |= alert_ids(value)
    elif isinstance(body, list):
        for item in body:
            found |= alert_ids(item)
    return found


def check_store(store_path: Path, config: Path, receiver: LocalServer, articles: int) -> None:
    """Exactly ``articles`` stored once; every hourly indicator equals a recount from the stored tags and equals
    ``stackwatch rebuild``; every recorded alert reached the receiver under exactly one ``webhook-id``, but those
    muted because a firing resolved before its group's first notification (there is nothing to tell)."""
    with Store.open(store_path, read_only=True) as store:
        assert store.query("SELECT count(*), count(DISTINCT id) FROM articles").rows == [(articles, articles)]
        streamed = store.query(
            "SELECT dynamic, bucket_start, value FROM indicators WHERE indicator = 'article_count'"
            " AND bucket_width = '1h' AND entity = '*' AND source = '*' AND dynamic <> '*' ORDER BY 1, 2"
        ).rows
        recount = store.query(
            "SELECT d.dynamic, date_trunc('hour', a.published_at) AS bucket, count(*)::DOUBLE"
            " FROM article_dynamics d JOIN articles a ON a.id = d.article_id WHERE d.label"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        ).rows
        fired = {row[0] for row in store.query("SELECT id FROM alerts").rows}
        muted = {row[0] for row in store.query("SELECT alert_id FROM deliveries WHERE status = 'muted'").rows}
        every_indicator = "SELECT * EXCLUDE (updated_at) FROM indicators ORDER BY ALL"
        before_rebuild = store.query(every_indicator).rows
    rebuild = subprocess.run(
        [sys.executable, "-m", "stackwatch.pipeline.cli", "rebuild", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert rebuild.returncode == 0, rebuild.stderr[-2000:]
    with Store.open(store_path, read_only=True) as store:
        assert store.query(every_indicator).rows == before_rebuild  # the stream's numbers equal a rebuild's
    assert [(d, b.astimezone(UTC), v) for d, b, v in streamed] == [(d, b.astimezone(UTC), v) for d, b, v in recount]
    assert sum(value for _, _, value in recount) >= articles * 0.5

    webhook_ids: dict[str, set[str]] = defaultdict(set)
    for request in receiver.received("/hook"):
        for alert in alert_ids(json.loads(request.body)):
            webhook_ids[alert].add(request.headers["webhook-id"])
    assert fired, "the rule should have fired"
    assert set(webhook_ids) == fired - muted  # every recorded alert reached the receiver, or was muted
    assert {alert: len(ids) for alert, ids in webhook_ids.items() if len(ids) != 1} == {}


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, theirs, ...), whatever session they started."""
    parents = {int(entry): _parent(int(entry)) for entry in os.listdir("/proc") if entry.isdigit()}
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def still_running(pids: set[int]) -> set[int]:
    """Which of ``pids`` are alive (zombies waiting to be reaped do not count)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive
