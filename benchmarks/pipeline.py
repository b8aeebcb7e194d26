"""The whole service under load: throughput, end-to-end latency, memory, lag, and cost over the classifier.

    python -m benchmarks.pipeline                      # steady phase + capacity phase (a few minutes)
    python -m benchmarks.pipeline --soak-minutes 30    # the default mode's soak (benchmarks/soak.py)

It starts its own embedded broker, runs ``stackwatch up`` (every role, the configured default classifier) as a
subprocess against it, and produces articles straight to the raw topic, each stamped with its produce time:

- steady phase: ``--rate`` articles/s for ``--seconds``; latency produce → DuckDB commit from the stored rows, and
  produce → webhook receipt from probe articles that each open a new hourly bucket (so each fires an alert);
- capacity phase: ``--burst`` articles at once; sustained articles/s until all are in DuckDB;
- the classifier alone on the same texts, run as the service runs it (its model processes, same batch size, the
  same batches in flight), for
  the ratio pipeline / classifier (the pipeline's overhead; target ≥ 0.8); the same ratio in CPU seconds per
  article (service with its model processes + broker, against the classifier alone), which holds on a shared
  machine where wall-clock rates drift;
- peak RSS of the whole process tree (VmHWM of the service, its model processes and the broker, summed: an upper
  bound of the tree's simultaneous peak; target <= 1 GB), each process's beside it, and consumer lag at the end.

``--runtime onnx|torch`` sets ``classifier.runtime`` for both the service and the classifier-alone baseline (default:
the configured default, onnx).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.machine import machine
from stackwatch.pipeline.kafka.broker import EmbeddedBroker, free_port, wait_for_port
from stackwatch.pipeline.kafka.lag import consumer_lag, total_lag
from stackwatch.pipeline.kafka.topics import TopicNames
from stackwatch.pipeline.roles.agents.classify import IN_FLIGHT
from stackwatch.pipeline.roles.classifiers import build_service_classifier
from stackwatch.settings import settings_from_mapping
from stackwatch.signals.messages import Article

APP = "bench"
PROBE = ("Meta signs a multibillion-dollar deal to rent Google TPUs", "The move reduces its reliance on Nvidia GPUs.")
CORPUS = Path(__file__).resolve().parent.parent / "corpus"
HTTP = httpx.Client(timeout=60)
"""One client for every poll: a new one each time (TLS context and all) cost this driver a tenth of a core during
the burst, taken from the service it measures."""


def news() -> list[tuple[str, str]]:
    """The labelled corpus's news items (title, body): 1,030 distinct texts of about 350 characters, as feeds
    deliver them. A stream cycling through them repeats each item every 1,030 articles, so a story gathers a few
    syndicated copies, not thousands."""
    files = [CORPUS / f"{name}.jsonl" for name in ("train", "validation", "test")]
    lines = [line for file in files for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(item["title"], item["text"]) for item in map(json.loads, lines)]


class Receiver:
    """A local webhook receiver that records when each alert id arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                now = time.time()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                for alert in body.get("data", {}).get("alerts", []) or [body.get("data", {})]:
                    if alert.get("status", "firing") == "firing" and alert.get("bucket_start"):
                        receiver.arrivals.setdefault(alert["bucket_start"], now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def article(number: int, produced: datetime, published: datetime, lead: tuple[str, str]) -> Article:
    return Article(
        id=f"bench-{number}",
        url=f"https://bench.example/{number}",
        title=f"{lead[0]} ({number})",
        summary=lead[1],
        source="bench",
        connector="bench",
        published_at=published,
        fetched_at=produced,
    )


async def produce(servers: list[str], topic: str, articles: list[tuple[float, Article]]) -> None:
    """Send each article at its scheduled offset (seconds from now), stamping fetched_at at send time."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=2)
    await producer.start()
    try:
        start = time.monotonic()
        pending = []
        for offset, item in articles:
            delay = start + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            data = item.to_dict()
            data["fetched_at"] = datetime.now(UTC).isoformat()
            pending.append(await producer.send(topic, json.dumps(data).encode(), key=item.id.encode()))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p50, p95, p99 = (ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 for share in (0.5, 0.95, 0.99))
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms (n={len(values)})"


def with_children(pid: int) -> list[int]:
    """``pid`` and its descendants (the service's inference process, the resource tracker), from /proc."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                pending.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def peak_rss_mb(pid: int, *, children: bool = True) -> tuple[float, float]:
    """(current RSS, peak RSS) in MB from /proc, summed over the process and (unless not) its children."""
    current = peak = 0.0
    for member in with_children(pid) if children else [pid]:
        try:
            text = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if "VmRSS" not in fields:
            continue  # a process that has exited and is not reaped yet holds no memory
        current += int(fields["VmRSS"].split()[0]) / 1024
        peak += int(fields["VmHWM"].split()[0]) / 1024
    return current, peak


def tree_rss(service: int, broker: int | None) -> list[tuple[str, float, float]]:
    """(name, current RSS, peak RSS) in MB of each process of the tree: the service, its children, the broker."""
    rows = []
    for member in [*with_children(service), *([broker] if broker is not None else [])]:
        try:
            name = Path(f"/proc/{member}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        current, peak = peak_rss_mb(member, children=False)
        if peak:
            kind = (
                "broker"
                if member == broker
                else "service"
                if member == service
                else "model"
                if "spawn_main" in name and "resource_tracker" not in name
                else "helper"
            )
            rows.append((kind, current, peak))
    return rows


def describe_tree(rows: list[tuple[str, float, float]]) -> str:
    """``total N MB (service A, model B, model C, broker D)`` of the peaks."""
    parts = ", ".join(f"{kind} {peak:.0f}" for kind, _, peak in rows)
    return f"{sum(peak for _, _, peak in rows):.0f} MB ({parts})"


def cpu_seconds_own(pid: int) -> float:
    """User + system CPU time of this one process (its threads, not its children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(*pids: int | None) -> float:
    """User + system CPU time of these processes, their threads and children so far, from /proc."""
    total = 0.0
    for pid in pids:
        for member in with_children(pid) if pid is not None else []:
            with contextlib.suppress(OSError):
                total += cpu_seconds_own(member)
    return total


def sql(port: int, query: str) -> list[list[Any]]:
    response = HTTP.post(f"http://127.0.0.1:{port}/api/sql", json={"sql": query})
    response.raise_for_status()
    rows: list[list[Any]] = response.json()["rows"]
    return rows


def metric_samples(port: int, name: str) -> dict[str, float]:
    """The samples of one metric family on the service's ``/metrics``, by sample name."""
    text = HTTP.get(f"http://127.0.0.1:{port}/metrics").text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == name
        for sample in family.samples
    }


def classify_calls(port: int) -> tuple[float, float]:
    """(calls, articles) the service's classifier has had so far, from its Prometheus histogram."""
    name = "stackwatch_classify_batch_size"
    samples = metric_samples(port, name)
    return samples.get(f"{name}_count", 0.0), samples.get(f"{name}_sum", 0.0)


def wait_for_count(port: int, expected: int, timeout: float) -> float:
    """Wait until the sink has written ``expected`` articles, read from its counter: an SQL query per poll would
    cost the service a sandbox process and a snapshot each time, taken from what is measured."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (
                metric_samples(port, "stackwatch_articles_stored").get("stackwatch_articles_stored_total", 0)
                >= expected
            ):
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {expected} articles stored after {timeout:.0f}s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="articles/s in the steady phase")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the steady phase")
    parser.add_argument("--burst", type=int, default=3000, help="articles in the capacity phase")
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="run benchmarks.soak instead")
    parser.add_argument("--runtime", choices=("onnx", "torch"), help="classifier.runtime (default: the default)")
    args = parser.parse_args(argv)
    if args.soak_minutes:
        from benchmarks.soak import main as soak

        soak(["--minutes", str(args.soak_minutes)])
        return

    work = Path(tempfile.mkdtemp(prefix="stackwatch-bench-"))
    leads = news()
    receiver = Receiver()
    web_port = free_port()
    names = TopicNames(APP)
    with EmbeddedBroker(log_file=work / "broker.log") as broker:
        raw_config = {
            "kafka": {
                "bootstrap_servers": [broker.bootstrap],
                "app_id": APP,
                "topic_prefix": APP,
                "session_timeout": "6s",
            },
            "storage": {"path": str(work / "bench.duckdb")},  # the shipped defaults
            "state": {"path": str(work / "state")},
            "web": {"host": "127.0.0.1", "port": web_port},
            "webhooks": [{"name": "bench", "url": f"http://127.0.0.1:{receiver.port}/hook"}],
            # Each probe is a new alert of one group: it is sent on the group's next group_interval tick.
            "alerting": {"group_wait": "200ms", "group_interval": "200ms"},
            **({"classifier": {"runtime": args.runtime}} if args.runtime else {}),
            "rules": [
                {
                    "name": "probe",
                    "kind": "threshold",
                    "dynamic": "decoupling",
                    "op": ">=",
                    "value": 1,
                    "webhooks": ["bench"],
                }
            ],
        }
        config = work / "stackwatch.yaml"
        config.write_text(yaml.safe_dump(raw_config), encoding="utf-8")
        log = (work / "service.log").open("wb")
        service = subprocess.Popen(
            [sys.executable, "-m", "stackwatch.pipeline.cli", "up", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )
        try:
            wait_for_port("127.0.0.1", web_port, 120)
            settings = settings_from_mapping(raw_config, environ={})
            # Warm up: the model loads and the consumer groups join before anything is measured. Probe buckets
            # must stay inside the stream's indicator retention (3 days) and in the past.
            base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=70)
            asyncio.run(produce([broker.bootstrap], names.raw, [(0.0, article(-1, base, base, PROBE))]))
            wait_for_count(web_port, 1, 300)
            _, rss_start = peak_rss_mb(service.pid)
            tree_start = tree_rss(service.pid, broker.pid)
            print(machine())
            print(f"service up; RSS {rss_start:.0f} MB; steady phase: {args.rate:g} articles/s for {args.seconds:g}s")

            # Steady phase: every 40th article is a decoupling probe in its own hourly bucket (one alert each).
            count = int(args.rate * args.seconds)
            if count // 40 >= 34:
                raise SystemExit("--rate x --seconds allows at most 1360 articles (one probe per 40, 2 h apart)")
            plan = []
            probes: dict[str, int] = {}
            for number in range(count):
                if number % 40 == 0:
                    # Two hours apart: the hour between is empty, so each probe starts a new episode (one alert).
                    bucket = base + timedelta(hours=2 + 2 * (number // 40))
                    probes[bucket.isoformat()] = number
                    plan.append((number / args.rate, article(number, base, bucket, PROBE)))
                else:
                    plan.append((number / args.rate, article(number, base, base, leads[number % len(leads)])))
            asyncio.run(produce([broker.bootstrap], names.raw, plan))
            wait_for_count(web_port, count + 1, 300)
            time.sleep(3)
            rows = sql(
                web_port, "SELECT id, epoch(stored_at) - epoch(fetched_at) FROM articles WHERE id LIKE 'bench-%'"
            )
            to_store = [float(latency) for _, latency in rows if latency is not None]
            produced_at = {
                row[0]: row[1]
                for row in sql(web_port, "SELECT id, epoch(fetched_at) FROM articles WHERE id LIKE 'bench-%'")
            }
            to_hook = []
            for probe_bucket, number in probes.items():
                arrived = receiver.arrivals.get(probe_bucket)
                sent = produced_at.get(f"bench-{number}")
                if arrived and sent:
                    to_hook.append(arrived - float(sent))

            # Capacity phase: a burst as fast as the producer goes; throughput until all are stored.
            # Spread over 60 hourly buckets, as a day's news is: one huge bucket would make every sink batch
            # recompute it whole, which no real stream does.
            burst = [
                (0.0, article(count + n, base, base + timedelta(hours=n % 60), leads[n % len(leads)]))
                for n in range(args.burst)
            ]
            start = time.monotonic()
            cpu_start = cpu_seconds(service.pid, broker.pid)
            broker_cpu_start, main_cpu_start = cpu_seconds(broker.pid), cpu_seconds_own(service.pid)
            calls_start = classify_calls(web_port)
            asyncio.run(produce([broker.bootstrap], names.raw, burst))
            done = wait_for_count(web_port, count + 1 + args.burst, 900)
            pipeline_rate = args.burst / (done - start)
            pipeline_cpu = (cpu_seconds(service.pid, broker.pid) - cpu_start) / args.burst
            broker_cpu = (cpu_seconds(broker.pid) - broker_cpu_start) / args.burst
            main_cpu = (cpu_seconds_own(service.pid) - main_cpu_start) / args.burst
            calls, classified = (end - begin for end, begin in zip(classify_calls(web_port), calls_start, strict=True))
            time.sleep(2)  # let the last offset commits land
            lag = total_lag(asyncio.run(consumer_lag([broker.bootstrap], names.consumer_groups(APP))))
            _, rss_peak = peak_rss_mb(service.pid)
            tree_peak = tree_rss(service.pid, broker.pid)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(60)
            log.close()

    # The classifier alone as the service runs it (its model processes, batches in flight), same texts and batch
    # size: the baseline of the ratio.
    classifier = build_service_classifier(settings.classifier, settings.taxonomy())
    texts = [item.text for _, item in burst]
    batch = settings.classifier.batch_size
    try:
        classifier.classify(texts[:batch])  # warm-up
        started, cpu_started = time.perf_counter(), cpu_seconds(os.getpid())
        # IN_FLIGHT batches at a time, as the classify agent queues them, so the model processes never wait.
        with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
            list(pool.map(classifier.classify, [texts[index : index + batch] for index in range(0, len(texts), batch)]))
        classifier_rate = len(texts) / (time.perf_counter() - started)
        classifier_cpu = (cpu_seconds(os.getpid()) - cpu_started) / len(texts)
    finally:
        close = getattr(classifier, "close", None)
        if close is not None:
            close()

    print(f"latency produce -> DuckDB commit: {percentiles(to_store)}")
    print(
        f"latency produce -> webhook receipt: {percentiles(to_hook)}"
        " (alerting.group_wait and group_interval 200 ms included)"
    )
    print(f"sustained pipeline throughput: {pipeline_rate:.1f} articles/s ({args.burst} articles)")
    print(
        f"classifier alone ({classifier.version}, batch {batch}, as the service runs it): {classifier_rate:.1f}"
        " articles/s"
    )
    print(f"ratio pipeline / classifier: {pipeline_rate / classifier_rate:.2f} (target >= 0.8)")
    print(
        f"CPU per article: pipeline {pipeline_cpu * 1000:.1f} ms (service + broker), classifier alone"
        f" {classifier_cpu * 1000:.1f} ms: ratio {classifier_cpu / pipeline_cpu:.2f}"
        " (the same ratio in CPU time, which other load on the machine does not skew)"
    )
    print(
        f"  of which: service process {main_cpu * 1000:.1f} ms, its inference process"
        f" {(pipeline_cpu - main_cpu - broker_cpu) * 1000:.1f} ms, broker {broker_cpu * 1000:.1f} ms"
    )
    print(f"  the service's classifier calls in the burst: {calls:.0f}, {classified / max(calls, 1):.1f} articles each")
    print(f"service RSS: {rss_start:.0f} MB after warm-up, peak {rss_peak:.0f} MB; consumer lag at the end: {lag}")
    print(
        f"process tree peak RSS (VmHWM summed, target <= 1000 MB), classifier.runtime {settings.classifier.runtime}:"
        f" after warm-up {describe_tree(tree_start)}; after the burst {describe_tree(tree_peak)}"
    )


if __name__ == "__main__":
    main()
