"""The sink role: the single DuckDB writer, fed from topics, plus webhook delivery from its outbox.

Consume a batch → write it in one DuckDB transaction → send the rules stage what the store now holds of the
articles the write changed → commit the Kafka offsets. A failed write commits nothing and consumes nothing more
until it succeeds: data waits in Kafka instead of being dropped.

The rules stage reads its observations from here, after the write, not from the classifier: an article's story
and novelty exist only once the store has grouped it, so a rule counting stories sees the store's stories, and
a later report that regroups stored articles sends their new facts too. It also means an alert's bucket is
stored by the time the alert is judged. A crash after the write and before the send loses nothing: the offsets
are not committed, so the records are written again (changing nothing) and their observations sent; with the
embedded broker, the rules' state is rebuilt from the store at start anyway.

A transaction's cost is mostly fixed (it recomputes every bucket the batch touched, whole), so under load the sink
gathers for longer: after a write that took ``w`` seconds it gathers for ``9 w``, within ``storage.flush_interval``
and ``storage.max_flush_interval``, which keeps DuckDB to about a tenth of its time. A ``flush_interval`` with no
new record ends the gathering early, so the end of a burst is written at once::

    gather_seconds(0.05, StorageSettings())   # 1.0: quick writes, the flush interval
    gather_seconds(0.4, StorageSettings())    # 3.6: slow writes, more records per transaction
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from mode import Service

from stackwatch.errors import BrokerError, StoreError
from stackwatch.pipeline import metrics
from stackwatch.pipeline.kafka.codec import decode, encode
from stackwatch.pipeline.kafka.producer import AckedProducer, start_with_retry
from stackwatch.pipeline.kafka.topics import TopicNames
from stackwatch.pipeline.roles.agents.common import RULES_KEY
from stackwatch.pipeline.roles.delivery import Deliverer
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import KafkaSettings, StorageSettings, WebhookSettings
from stackwatch.signals.messages import (
    Alert,
    DeadLetter,
    IndicatorUpdate,
    MessageError,
    Observation,
    Observations,
    TaggedArticle,
)
from stackwatch.storage.derive import Derivation
from stackwatch.storage.maintenance import apply_retention, snapshot
from stackwatch.storage.outbox import Grouping
from stackwatch.storage.recovery import stored_ids, stored_observations
from stackwatch.storage.sink import DuckDBSink, Flushed, SinkMessage
from stackwatch.storage.store import Store, held_by_another_process

__all__ = ["OBSERVATIONS_PER_RECORD", "SinkService", "gather_seconds", "observation_records"]

log = logging.getLogger(__name__)

WRITE_SHARE = 0.1
"""Under load, the share of the sink's time its DuckDB transactions may take."""

LOCK_WAIT = 30.0
"""Seconds the sink waits at start for another process to let go of the store file."""

OBSERVATIONS_PER_RECORD = 1000
"""Observations per record of the observations topic (about 300 bytes each)."""


def gather_seconds(last_write: float, storage: StorageSettings) -> float:
    """How long the sink gathers records after the first, given how long its last write took."""
    stretched = last_write * (1 - WRITE_SHARE) / WRITE_SHARE
    return min(storage.longest_gather, max(storage.flush_interval, stretched))


class SinkService(Service):
    """Owns the DuckDB file for writing; nothing else in the deployment writes it.

    ``kafka``: the topics and the sink's consumer group; ``storage``: the file, its batching and maintenance;
    ``derivation``: what each write derives (:mod:`stackwatch.pipeline.roles.derivation`); ``webhooks`` and
    ``grouping``: where and how the outbox is delivered (:mod:`stackwatch.pipeline.roles.delivery`).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        storage: StorageSettings,
        servers: Sequence[str],
        *,
        derivation: Derivation,
        webhooks: Sequence[WebhookSettings],
        grouping: Grouping,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kafka = kafka
        self.storage = storage
        self._derivation = derivation
        # The deliverer's targets and grouping at start; a reload reconfigures the deliverer itself.
        self._webhooks = {hook.name: hook for hook in webhooks}
        self._grouping = grouping
        self.topics = TopicNames(kafka.topic_prefix)
        self._kinds: dict[str, type[TaggedArticle | IndicatorUpdate | Alert | DeadLetter]] = {
            self.topics.tagged: TaggedArticle,
            self.topics.indicators: IndicatorUpdate,
            self.topics.alerts: Alert,
            self.topics.deadletter: DeadLetter,
        }
        self.servers = list(servers)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer = AckedProducer(self.servers, f"{kafka.app_id}-sink", kafka.request_timeout)
        self.store_thread: StoreThread | None = None
        self.deliverer: Deliverer | None = None
        self.rows_written = 0
        self.last_error: str | None = None
        self.last_write_seconds = 0.0
        self._stopping = asyncio.Event()
        self._opened = asyncio.Event()

    async def store(self) -> StoreThread:
        """The store's thread, once :meth:`on_start` opened the file (other roles of this process read through it)."""
        await self._opened.wait()
        assert self.store_thread is not None
        return self.store_thread

    async def stored(self, ids: Sequence[str]) -> set[str]:
        """Which of these article ids the store holds (or dead-lettered): the sources' end-to-end acknowledgement."""
        thread = await self.store()
        return await thread.call(stored_ids, thread.store.connection, ids)

    async def on_start(self) -> None:
        store = await self._open_store()
        self.store_thread = StoreThread(store)
        self._opened.set()
        self.add_future(self._maintain())
        self.deliverer = Deliverer(self.store_thread, self._webhooks, self._grouping)
        self.add_future(self._consume())
        self.add_future(self.deliverer.run())
        log.info("sink: writing %s", self.storage.path)

    async def _open_store(self) -> Store:
        """Open the file for writing. A process reading it (``stackwatch sql`` or ``status`` run while the
        service starts, which read the file itself when no service answers yet) holds it for one query: wait for
        it, up to :data:`LOCK_WAIT`, instead of failing the start."""
        deadline = asyncio.get_running_loop().time() + LOCK_WAIT
        while True:
            try:
                return Store.open(
                    self.storage.path, derivation=self._derivation, memory_limit=self.storage.memory_limit
                )
            except StoreError as error:
                if not held_by_another_process(error) or asyncio.get_running_loop().time() >= deadline:
                    raise
                log.warning("sink: %s is held by another process; trying again", self.storage.path)
                await asyncio.sleep(0.5)

    async def on_stop(self) -> None:
        self._stopping.set()
        # The consume loop flushes and commits what it holds when it sees the stop flag.
        await asyncio.sleep(0)

    async def on_shutdown(self) -> None:
        try:
            if self.consumer is not None:
                await self.consumer.stop()
        except KafkaError as error:
            log.warning("sink: error while leaving the consumer group: %s", error)
        try:
            await self.producer.stop()
        except KafkaError as error:
            log.warning("sink: error while stopping the producer: %s", error)
        if self.deliverer is not None:
            await self.deliverer.close()
        if self.store_thread is not None:
            await self.store_thread.close()

    async def _consume(self) -> None:
        assert self.store_thread is not None
        session_ms = int(self.kafka.session_timeout * 1000)
        self.consumer = consumer = AIOKafkaConsumer(
            *self._kinds,
            bootstrap_servers=self.servers,
            group_id=f"{self.kafka.app_id}-sink",
            client_id=f"{self.kafka.app_id}-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(1000, session_ms // 4),
            max_poll_interval_ms=max(300_000, session_ms),
            metadata_max_age_ms=5_000,
        )
        if not await start_with_retry(consumer, "sink consumer", self.servers, self._stopping):
            return
        if not await self.producer.start(self._stopping):
            return
        sink = DuckDBSink(self.store_thread.store)
        backoff = 1.0
        while not self._stopping.is_set():
            if not len(sink):
                await self._fill(consumer, sink)
                if not len(sink):
                    continue
            started = asyncio.get_running_loop().time()
            articles = sink.pending_articles
            try:
                with metrics.SINK_COMMIT_SECONDS.time():
                    flushed = await self.store_thread.call(sink.flush)
            except StoreError as error:
                self.last_error = str(error)
                log.error(
                    "sink: %s; holding %d records, consuming paused, retry in %.0fs",
                    error,
                    len(sink),
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            backoff = 1.0
            self.last_error = None
            self.last_write_seconds = asyncio.get_running_loop().time() - started
            self.rows_written += flushed.records
            metrics.ARTICLES_STORED.inc(articles)
            if not await self._tell_rules(flushed):
                return  # stopping before the rules heard of the write: the records are read again after restart
            try:
                await consumer.commit()
            except KafkaError as error:
                # The rows are written; the records come again after a restart and upsert to the same rows.
                log.warning("sink: offset commit failed after a successful write: %s", error)
            if self.deliverer is not None:
                self.deliverer.wake()

    async def _tell_rules(self, flushed: Flushed) -> bool:
        """Send the rules stage the stored facts of the articles ``flushed`` changed, retrying until the broker
        acknowledges them; False if the service stops first."""
        if not flushed.articles:
            return True
        assert self.store_thread is not None
        thread = self.store_thread
        backoff = 1.0
        while True:
            try:
                observed = await thread.call(stored_observations, thread.store.connection, flushed.articles)
                await self.producer.send_all(observation_records(self.topics.observations, observed))
                return True
            except (BrokerError, StoreError) as error:
                log.warning("sink: cannot tell the rules of %d stored articles: %s", len(flushed.articles), error)
            if self._stopping.is_set():
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):  # not wait_for: see Scheduler._run
                    await self._stopping.wait()
            backoff = min(backoff * 2, 30.0)

    async def _fill(self, consumer: AIOKafkaConsumer, sink: DuckDBSink) -> None:
        """Wait for records, then keep taking them until ``storage.batch_size``, :func:`gather_seconds` after the
        first, or ``storage.flush_interval`` without a new one: a transaction's fixed cost (deriving every touched
        bucket) dwarfs its per-row cost, so under load a few large transactions beat many small ones, and when
        the load stops what was gathered is written at once."""
        storage = self.storage
        loop = asyncio.get_running_loop()
        gather = gather_seconds(self.last_write_seconds, storage)
        deadline: float | None = None  # set when the first record arrives
        # Not on the stop flag: what was taken must be flushed and committed, and the interval bounds the wait.
        while len(sink) < storage.batch_size:
            wait = storage.flush_interval if deadline is None else min(storage.flush_interval, deadline - loop.time())
            if wait <= 0:
                return
            batches = await consumer.getmany(timeout_ms=int(wait * 1000), max_records=storage.batch_size - len(sink))
            if not batches:
                return  # a quiet interval: write what was gathered, or back to the caller to check the stop flag
            if deadline is None:
                deadline = loop.time() + gather
            for partition, records in batches.items():
                for record in records:
                    sink.add(
                        self._decode(
                            partition.topic, record.value, f"{partition.topic}[{partition.partition}]@{record.offset}"
                        )
                    )

    async def _maintain(self) -> None:
        """Publish the read-only snapshot every ``storage.snapshot_interval``; apply retention every
        ``storage.retention.interval`` (the first run a minute after start)."""
        storage = self.storage
        loop = asyncio.get_running_loop()
        next_snapshot = loop.time() + (storage.snapshot_interval or 0.0)
        next_retention = loop.time() + min(60.0, storage.retention.interval)
        while not self._stopping.is_set():
            await asyncio.sleep(min(1.0, storage.snapshot_interval or 1.0))
            if self.store_thread is None or self._stopping.is_set():
                continue
            store = self.store_thread.store
            try:
                if storage.snapshot_interval and loop.time() >= next_snapshot:
                    next_snapshot = loop.time() + storage.snapshot_interval
                    await self.store_thread.call(snapshot, store, storage.snapshot_file())
                if loop.time() >= next_retention:
                    next_retention = loop.time() + storage.retention.interval
                    report = await self.store_thread.call(
                        apply_retention,
                        store,
                        body_days=storage.retention.body_days,
                        dead_letter_days=storage.retention.dead_letter_days,
                    )
                    log.info(
                        "sink: retention dropped %d bodies, %d dead letters; %s is %.1f MB; rows %s",
                        report.bodies_dropped,
                        report.dead_letters_dropped,
                        storage.path,
                        report.file_bytes / 1e6,
                        report.row_counts,
                    )
            except StoreError as error:
                log.warning("sink: maintenance: %s", error)

    def _decode(self, topic: str, value: bytes | None, origin: str) -> SinkMessage:
        kind = self._kinds[topic]
        try:
            return decode(kind, value)
        except MessageError as error:
            log.warning("sink: undecodable record %s: %s", origin, error)
            payload = (value or b"")[:4000].decode("utf-8", "replace")
            return DeadLetter(stage="sink", reason=f"{kind.__name__}: {error}", payload=payload, origin=origin)


def observation_records(topic: str, observed: Sequence[Observation]) -> list[tuple[str, bytes | None, bytes]]:
    """``observed`` as records of the observations topic, in order, all under the one key of the rules stage."""
    return [
        (topic, RULES_KEY, encode(Observations(tuple(observed[start : start + OBSERVATIONS_PER_RECORD]))))
        for start in range(0, len(observed), OBSERVATIONS_PER_RECORD)
    ]
