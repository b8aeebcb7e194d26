"""A stop of `stackwatch up` ends by itself: during a burst, when idle, with the broker frozen; the backstop that
ends a stop which still hangs exits non-zero and names what was running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.pipeline.process.backstop import FORCED_EXIT_STATUS
from stackwatch.pipeline.process.children import ChildRecord
from tests.helpers.service import Service, threshold_rule, write_config

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "train.jsonl"
BACKSTOP_LINE = "the stop did not end"
STOP_TIMEOUT = 120.0
"""How long a test waits for the stopped process: generous, far past the stop's own bounds."""


def articles(path: Path, count: int) -> Path:
    """``count`` distinct JSONL articles (id/title/text/url/published_at) made from the bundled corpus."""
    records = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    with path.open("w", encoding="utf-8") as out:
        for index in range(count):
            record = records[index % len(records)]
            article = {
                "id": f"stop-{index}",
                "title": f"{record['title']} ({index})",
                "text": record["text"],
                "url": f"http://127.0.0.1/stop/{index}",
                "published_at": "2026-05-01T12:00:00Z",
            }
            out.write(json.dumps(article) + "\n")
    return path


def up(directory: Path, count: int, name: str | None = None, **sections: Any) -> Service:
    """`stackwatch up` with its embedded broker on ``count`` articles from a file, a threshold rule and a webhook
    nobody listens to (delivery retries, which a stop must not wait for); ``name`` tells apart the logs of two
    runs in one directory."""
    web_port = free_port()
    config: dict[str, Any] = {
        "kafka": {"bootstrap_servers": None},
        "storage": {"path": str(directory / "stackwatch.duckdb"), "flush_interval": "200ms"},
        "state": {"path": str(directory / "state")},
        "web": {"host": "127.0.0.1", "port": web_port},
        "sources": [{"name": "bulk", "type": "file", "path": str(articles(directory / "in.jsonl", count))}],
        "webhooks": [{"name": "ops", "url": f"http://127.0.0.1:{free_port()}/hook"}],
        "rules": [threshold_rule("any-decoupling", "decoupling")],
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    return Service(write_config(directory / "stackwatch.yaml", config), web_port=web_port, cwd=directory, name=name)


def stopped_by_itself(service: Service) -> str:
    """SIGTERM, then the process's output once it exited 0 by itself, without the backstop."""
    code = service.stop(signal.SIGTERM, timeout=STOP_TIMEOUT)
    output = service.output
    assert code == 0, output[-4000:]
    assert BACKSTOP_LINE not in output, output[-4000:]
    return output


def test_sigterm_during_a_burst_with_batches_in_the_model_processes_stops_by_itself(tmp_path: Path) -> None:
    # The default classifier (model processes, two batches in flight); a short drain, so the app stops mid-burst.
    service = up(tmp_path, 1500, storage={"drain_timeout": "1s"})
    try:
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows[0][0] >= 1, timeout=300)
    finally:
        output = stopped_by_itself(service)
    assert "Traceback" not in output


def test_sigterm_when_idle_stops_by_itself(tmp_path: Path) -> None:
    service = up(tmp_path, 200, classifier={"backend": "keyword"})
    try:
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows == [[200]], timeout=180)
    finally:
        output = stopped_by_itself(service)
    assert "Traceback" not in output


def test_sigterm_with_the_broker_frozen_mid_burst_stops_by_itself_and_the_restart_stores_every_article_once(
    tmp_path: Path,
) -> None:
    service = up(tmp_path, 3000, classifier={"backend": "keyword"}, storage={"drain_timeout": "1s"})
    broker = None
    try:
        service.wait_until("SELECT count(*) FROM articles", lambda rows: rows[0][0] >= 1, timeout=180)
        broker = ChildRecord.read(tmp_path / "state" / "broker.pid")
        assert broker is not None
        assert broker.is_running()
        os.kill(broker.pid, signal.SIGSTOP)  # answers nothing from now on, and its connections stay open
    finally:
        stopped_by_itself(service)
        if broker is not None and broker.is_running():
            os.kill(broker.pid, signal.SIGKILL)
    # Whatever the freeze caught (records held by a producer, offsets not committed, or nothing in flight at all),
    # what the stop left unstored is read again: the restart, on a new embedded broker, stores every article once.
    # That the stop commits nothing past its deadline is specified in test_transport, where the offsets can be read.
    restarted = up(tmp_path, 3000, name="restart", classifier={"backend": "keyword"})
    try:
        restarted.wait_until(
            "SELECT count(*), count(DISTINCT url) FROM articles", lambda rows: rows == [[3000, 3000]], timeout=300
        )
    finally:
        stopped_by_itself(restarted)


BACKSTOP_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys
    from stackwatch.pipeline.process import backstop

    async def waits_for_ever():
        await asyncio.Event().wait()

    async def main():
        asyncio.ensure_future(waits_for_ever())
        backstop.arm(asyncio.get_running_loop(), 0.2, before_exit=lambda: print("cleaned up", flush=True))
        await asyncio.sleep(60)

    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(message)s")
    asyncio.run(main())
    """
)


def test_the_backstop_exits_non_zero_naming_every_pending_task_and_cleans_up_first() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", BACKSTOP_SCRIPT], capture_output=True, text=True, timeout=STOP_TIMEOUT, check=False
    )
    assert finished.returncode == FORCED_EXIT_STATUS != 0
    assert finished.stdout == "cleaned up\n"
    assert f"CRITICAL stopping: BUG: {BACKSTOP_LINE}" in finished.stderr
    assert "waits_for_ever@<string>" in finished.stderr  # the task's chain of awaits
    assert "MainThread: " in finished.stderr  # and every thread's stack
