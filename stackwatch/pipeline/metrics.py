"""Every Prometheus metric of the service, in one registry served at ``GET /metrics``.

Code paths record events with one call::

    metrics.CLASSIFY_BATCH_SIZE.observe(len(articles))
    with metrics.CLASSIFY_SECONDS.time(): ...
    metrics.ARTICLES_PRODUCED.labels(source="wire").inc(3)

Figures that already live elsewhere (the scheduler's per-source state, the sink's row count, the store's alerts
and deliveries, consumer lag, the snapshot file) are read when ``/metrics`` is scraped: the endpoint gathers a
:class:`Live` record and hands it to :data:`LIVE`, which turns it into metric families.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "ARTICLES_PRODUCED",
    "ARTICLES_STORED",
    "CLASSIFY_BATCH_SIZE",
    "CLASSIFY_SECONDS",
    "CONTENT_TYPE",
    "LIVE",
    "REGISTRY",
    "SINK_COMMIT_SECONDS",
    "Live",
    "SourceFigures",
    "render",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry(auto_describe=True)

ARTICLES_PRODUCED = Counter(
    "stackwatch_articles_produced",
    "Articles the broker acknowledged on the raw topic, per source.",
    ["source"],
    registry=REGISTRY,
)
ARTICLES_STORED = Counter(
    "stackwatch_articles_stored",
    "Tagged articles the sink wrote to DuckDB (an article delivered again after a restart counts again).",
    registry=REGISTRY,
)
CLASSIFY_BATCH_SIZE = Histogram(
    "stackwatch_classify_batch_size",
    "Articles per classifier call.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
CLASSIFY_SECONDS = Histogram(
    "stackwatch_classify_seconds",
    "Time of one classifier call on a batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
SINK_COMMIT_SECONDS = Histogram(
    "stackwatch_sink_commit_seconds",
    "Time of one sink transaction (write, derived indicators, commit).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)


@dataclass(frozen=True, slots=True)
class SourceFigures:
    """One source's counters, as the scheduler keeps them."""

    name: str
    type: str
    fetched: int
    rejected: int
    failures: int
    polls: int
    up: bool


@dataclass(frozen=True, slots=True)
class Live:
    """What ``/metrics`` read at scrape time; a field left empty/None is not exported by this process."""

    sources: tuple[SourceFigures, ...] = ()
    lag: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    sink_rows: int | None = None
    alerts: Mapping[str, int] = field(default_factory=dict)
    deliveries: Mapping[str, int] = field(default_factory=dict)
    snapshot_age: float | None = None


class _LiveCollector(Collector):
    def __init__(self) -> None:
        self.live = Live()

    def describe(self) -> list[Metric]:
        return []  # families vary with the process's roles; nothing to pre-register

    def collect(self) -> Iterator[Metric]:
        live = self.live
        if live.sources:
            fetched = CounterMetricFamily(
                "stackwatch_articles_fetched", "Articles parsed from a source (valid and rejected).", labels=["source"]
            )
            rejected = CounterMetricFamily(
                "stackwatch_articles_rejected", "Entries of a source sent to the dead-letter topic.", labels=["source"]
            )
            failures = CounterMetricFamily("stackwatch_source_failures", "Failed polls of a source.", labels=["source"])
            polls = CounterMetricFamily("stackwatch_source_polls", "Completed polls of a source.", labels=["source"])
            up = GaugeMetricFamily(
                "stackwatch_source_up", "1 when the source's last poll succeeded.", labels=["source"]
            )
            for source in live.sources:
                fetched.add_metric([source.name], source.fetched + source.rejected)
                rejected.add_metric([source.name], source.rejected)
                failures.add_metric([source.name], source.failures)
                polls.add_metric([source.name], source.polls)
                up.add_metric([source.name], 1.0 if source.up else 0.0)
            yield from (fetched, rejected, failures, polls, up)
        if live.lag:
            lag = GaugeMetricFamily(
                "stackwatch_consumer_lag",
                "Records not yet committed, per consumer group and topic.",
                labels=["group", "topic"],
            )
            for group, topics in sorted(live.lag.items()):
                for topic, count in sorted(topics.items()):
                    lag.add_metric([group, topic], count)
            yield lag
        if live.sink_rows is not None:
            rows = CounterMetricFamily("stackwatch_sink_rows", "Records the sink wrote to DuckDB since start.")
            rows.add_metric([], live.sink_rows)
            yield rows
        if live.alerts or live.sink_rows is not None:
            alerts = CounterMetricFamily("stackwatch_alerts_fired", "Alerts stored, per severity.", labels=["severity"])
            for severity, count in sorted(live.alerts.items()):
                alerts.add_metric([severity], count)
            yield alerts
            deliveries = GaugeMetricFamily(
                "stackwatch_deliveries", "Webhook deliveries in the outbox, per status (outcome).", labels=["status"]
            )
            for status, count in sorted(live.deliveries.items()):
                deliveries.add_metric([status], count)
            yield deliveries
        if live.snapshot_age is not None:
            age = GaugeMetricFamily(
                "stackwatch_snapshot_age_seconds", "Seconds since the read-only snapshot was published."
            )
            age.add_metric([], live.snapshot_age)
            yield age


LIVE = _LiveCollector()
REGISTRY.register(LIVE)


def render(live: Live) -> bytes:
    """The exposition text for one scrape: event metrics plus ``live``."""
    LIVE.live = live
    return generate_latest(REGISTRY)
