"""A soak of the default mode: `stackwatch up` with the embedded broker it starts, fed by a `file` source.

    python -m benchmarks.soak --minutes 30                  # 10 articles/s, broker capped at 64 MiB
    python -m benchmarks.pipeline --soak-minutes 30         # the same

Every 30 s it prints the resident memory of the whole process tree (the service, its model processes, the
embedded broker) and of the broker alone, the articles stored, and how many times the service recycled itself in
place because the broker (which keeps every record it is sent) went over ``kafka.embedded_memory_limit``. The cap
is set low here so that a 30-minute soak crosses it; its default is 1 GiB. The end line compares the tree's RSS
at the end with its RSS after warm-up, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from benchmarks.machine import cpu_flags
from benchmarks.pipeline import news, peak_rss_mb, with_children
from stackwatch.pipeline.kafka.broker import free_port, wait_for_port

SAMPLE_EVERY = 30.0


def stored(port: int) -> int:
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/sql", json={"sql": "SELECT count(*) FROM articles"}, timeout=30
        )
        return int(response.json()["rows"][0][0])
    except (httpx.HTTPError, KeyError, IndexError, ValueError):
        return -1


def broker_rss_mb(pid: int) -> float:
    """The RSS of the embedded broker among ``pid``'s descendants (0 while it restarts)."""
    for member in with_children(pid):
        try:
            if b"tansu" in Path(f"/proc/{member}/cmdline").read_bytes():
                return peak_rss_mb(member, children=False)[0]
        except OSError:
            continue
    return 0.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=10.0, help="articles/s appended to the source's file")
    parser.add_argument("--memory-limit", default="64MiB", help="kafka.embedded_memory_limit for the run")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="stackwatch-soak-"))
    feed = work / "feed.jsonl"
    feed.touch()
    web_port = free_port()
    config = {
        "kafka": {"bootstrap_servers": None, "embedded_memory_limit": args.memory_limit},
        "storage": {"path": str(work / "soak.duckdb")},
        "state": {"path": str(work / "state")},
        "web": {"host": "127.0.0.1", "port": web_port},
        "sources": [{"name": "feed", "type": "file", "path": str(feed), "interval": "1s"}],
        "rules": [{"name": "probe", "kind": "threshold", "dynamic": "decoupling", "op": ">=", "value": 1}],
    }
    (work / "stackwatch.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    log_path = work / "service.log"
    print(
        f"soak: {args.minutes:g} min at {args.rate:g} articles/s; memory limit {args.memory_limit}; CPU {cpu_flags()}"
    )
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "stackwatch.pipeline.cli", "up", "-c", str(work / "stackwatch.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )
        try:
            run(args, service, feed, web_port, log_path)
        finally:
            service.terminate()
            service.wait(120)


def run(args: argparse.Namespace, service: subprocess.Popen[bytes], feed: Path, port: int, log: Path) -> None:
    wait_for_port("127.0.0.1", port, 180)
    leads = news()
    written = 0
    samples: list[tuple[float, float]] = []  # (tree RSS, broker RSS)
    start = time.monotonic()
    next_sample = start + SAMPLE_EVERY
    while time.monotonic() - start < args.minutes * 60:
        due = int((time.monotonic() - start) * args.rate)
        with feed.open("a", encoding="utf-8") as out:
            for number in range(written, due):
                title, text = leads[number % len(leads)]
                published = datetime.now(UTC).isoformat()
                out.write(json.dumps({"id": f"soak-{number}", "title": f"{title} ({number})", "summary": text,
                                      "published_at": published}) + "\n")  # fmt: skip
        written = max(written, due)
        if time.monotonic() >= next_sample:
            next_sample += SAMPLE_EVERY
            tree, broker = peak_rss_mb(service.pid)[0], broker_rss_mb(service.pid)
            samples.append((tree, broker))
            recycles = log.read_text(encoding="utf-8", errors="replace").count("over kafka.embedded_memory_limit")
            print(
                f"{(time.monotonic() - start) / 60:5.1f} min: {written} written, {stored(port)} stored;"
                f" RSS of the tree {tree:.0f} MB (broker {broker:.0f}); recycled {recycles} time(s)",
                flush=True,
            )
        time.sleep(0.2)
    if not samples:
        return
    warm = samples[min(1, len(samples) - 1)]  # after the first minute: the model is loaded
    end = samples[-1]
    print(
        f"soak: {written} articles over {args.minutes:g} min; RSS of the whole tree after warm-up {warm[0]:.0f} MB,"
        f" end {end[0]:.0f} MB ({end[0] / warm[0]:.2f}x), max {max(row[0] for row in samples):.0f} MB, median"
        f" {statistics.median(row[0] for row in samples):.0f} MB; broker max {max(row[1] for row in samples):.0f} MB"
    )


if __name__ == "__main__":
    main()
