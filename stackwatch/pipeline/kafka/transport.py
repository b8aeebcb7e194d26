"""Faust's Kafka transport, corrected: its producer re-sends what the broker leaves unanswered, and its consumer
never lets an offset be committed past a record the streams did not get.

    app = StackwatchApp("stackwatch", broker="kafka://127.0.0.1:9092", resend_after=30.0)

Faust hands aiokafka one timeout, ``producer_request_timeout`` (20 minutes by default), for three different
things: how long one request may go unanswered, how long a batch may wait to be delivered, and how long ``send``
may wait for buffer space. A single produce request the broker never answers therefore stalls its partition for 20
minutes, and with it every offset commit (Faust flushes the producer before it commits) and so the worker's stop.
After that, aiokafka fails the batch instead of retrying it, and Faust commits the input's offsets anyway: the
output is lost.

Here a request unanswered for ``resend_after`` seconds closes its connection and is sent again on a new one, as Kafka's
own producer does (``request.timeout.ms``), and a batch never expires: it is retried until the broker takes it. A
re-sent batch may be stored twice by the broker; downstream is at-least-once already and the store idempotent. A
``send`` that fails for a reason that passes (no metadata for the topic yet, the buffer full) is tried again
instead of raising into the agent, which Faust would take as done with its event. The producer also keeps the
metadata of every topic it sent to (``TopicKeepingProducer``).

Its consumer closes the way a rebalance let Faust (0.15.3) commit past records: a fetch that returned before the
rewind to the committed offsets went on to the streams after it, and Faust took the records' jump past its read
position as a "gap" (as if the offsets between did not exist), dropped the re-read records below them as already
read, and committed past them: lost articles (seen in the SIGKILL fault test, one record per partition at the same
offset). Here one clock on the consumer's thread stamps each fetch as it returns and each rewind of a partition as
it happens, and a record is handed on only if no rewind of its partition came after its fetch. Faust tells the
two apart by the rebalance's generation instead, which is not when the partition moved: a first fix on that basis
also dropped records fetched after the rewind, which were then never read (two lost in CI). Also, a record from
before the last rebalance is not counted as processed when a stream acknowledges it (it is read again), and the
rewind takes streamed partitions that have no committed offset back to their start (aiokafka leaves them where
they are). Faust still takes forward jumps in offsets as gaps after rewinds; the bookkeeping is Faust's and not
proven here beyond the fault tests.

A stop waits ``stop_wait`` seconds at most for what Faust's stop waits on without a bound (``StackwatchApp``): for
the agents to acknowledge every record they took (``Consumer.wait_empty``) and for the broker to take what the
producer holds (``Producer.flush``, before each offset commit and when the app stops). Past that deadline, or once a
flush gave up, nothing more is committed: what was not done is read again after the restart, as after a crash.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import aiokafka
import faust
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message, TransportT
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from stackwatch.errors import BrokerError
from stackwatch.pipeline.kafka.lag import high_watermarks
from stackwatch.pipeline.kafka.producer import TopicKeepingProducer

__all__ = ["ResendingProducer", "StackwatchApp"]

DEFAULT_RESEND_AFTER = 30.0
MAX_SEND_BACKOFF = 5.0
DEFAULT_STOP_WAIT = 15.0
"""Seconds a stop waits for the agents' records in flight and for the broker (``StackwatchApp.stop_wait``)."""
_CHECK_EVERY = 1.0

log = logging.getLogger(__name__)


class ResendingProducer(TopicKeepingProducer):
    """aiokafka's producer, with one request's timeout apart from the delivery window (which is unbounded).

    ``request_timeout_ms`` keeps only one of aiokafka's meanings: how long ``send`` waits for buffer space.
    ``resend_after_ms`` bounds the wait for one reply (and the broker's own wait for replicas), after which aiokafka
    closes the connection and retries the batch, because the batch has not expired.
    """

    def __init__(self, *, resend_after_ms: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # aiokafka has no public setting for these: the client's is read when a connection opens, the sender's is
        # the produce request's own timeout, the batch TTL decides whether a failed batch may be retried
        # (aiokafka is pinned <0.15; tests/test_faults.py shows the re-send through a proxy that swallows a request).
        self.client._request_timeout_ms = resend_after_ms
        self._sender._request_timeout_ms = resend_after_ms
        self._message_accumulator._batch_ttl = math.inf

    def abandon(self, error: Exception) -> None:
        """Fail every batch it holds with ``error``, and every later ``send``: a flush or a stop waiting for them
        then ends. For a stop only, when the broker does not take them (their batches never expire)."""
        self._message_accumulator.fail_all(error)


class _Producer(faust_aiokafka.Producer):
    gave_up = False
    """Set when a flush during the stop gave up on the broker; from then on nothing is committed (``_Consumer``)."""

    @property
    def _producer_type(self) -> type[aiokafka.AIOKafkaProducer]:
        return ResendingProducer

    def _settings_extra(self) -> dict[str, Any]:
        resend_after = cast("StackwatchApp", self.app).resend_after  # only StackwatchApp makes this transport
        return {**super()._settings_extra(), "resend_after_ms": int(resend_after * 1000)}

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        """Faust's ``send``, retried while it fails for a reason that passes (the broker away, its metadata not
        known yet, the buffer full), instead of raising into the agent: Faust acks the event an agent raised on,
        so its output would be lost. Other errors raise as before."""
        backoff = 0.1
        while True:
            try:
                return await super().send(topic, *args, **kwargs)
            except ProducerSendError as error:
                cause = error.__cause__
                if self.gave_up or not (getattr(cause, "retriable", False) or isinstance(cause, KafkaTimeoutError)):
                    raise
                log.warning("sending to %s failed (%r); trying again in %.1fs", topic, cause, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_SEND_BACKOFF)

    async def flush(self) -> None:
        """Faust's flush (wait until the broker took every record held), bounded while the app stops.

        Faust (0.15.3) awaits this without a bound before every offset commit (``Consumer._commit_offsets``) and
        when the app stops (``App.on_stop``), and our batches never expire (``ResendingProducer``): with a broker
        that stopped answering, the worker's stop waited for ever. Past the app's stop deadline the held batches
        are given up (``ResendingProducer.abandon``) and this returns; ``_Consumer._commit`` then commits nothing,
        so their inputs are read again after the restart. Outside a stop, a flush waits as long as the broker
        needs. It can go when Faust bounds its stop (``stream_wait_empty`` and the flushes have no timeout;
        robinhood/faust#402 is the wait part) and aiokafka has a delivery timeout that fails the commit.
        """
        if self.gave_up:
            return
        app = cast("StackwatchApp", self.app)
        flushing = asyncio.ensure_future(super().flush())
        try:
            while True:
                done, _ = await asyncio.wait({flushing}, timeout=_CHECK_EVERY)
                if done:
                    flushing.result()
                    return
                if app.stop_overdue():
                    self._give_up(app.stop_wait)
                    return
        finally:
            if not flushing.done():
                flushing.cancel()

    async def on_stop(self) -> None:
        """Faust's producer stop; after a flush gave up, it does not wait for the requests the broker left
        unanswered (aiokafka waits up to ``resend_after`` for each): mode's shutdown cancels what is left."""
        if not self.gave_up:
            await super().on_stop()
            return
        stopping = asyncio.ensure_future(super().on_stop())
        done, _ = await asyncio.wait({stopping}, timeout=_CHECK_EVERY)
        if not done:
            log.info("stopping: not waiting for the produce requests the broker left unanswered")

    def _give_up(self, waited: float) -> None:
        self.gave_up = True
        log.warning(
            "stopping: the broker took no records for %.0fs of the stop; giving up on what the producer holds. "
            "No offset is committed from now on: what it covers is read again after the restart",
            waited,
        )
        producer = self._producer
        if isinstance(producer, ResendingProducer):
            producer.abandon(BrokerError("stopping: the broker did not take this record before the stop gave up"))


class _Fetch(dict[TP, list[Any]]):
    """The records one fetch returned, with the consumer thread's clock when it returned them."""

    def __init__(self, records: Mapping[TP, list[Any]], at: int) -> None:
        super().__init__(records)
        self.at = at


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """The thread that runs aiokafka's consumer, keeping one clock for fetches and rewinds (``_Consumer``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = itertools.count()
        self.rewound_at: dict[TP, int] = {}

    async def _fetch_records(
        self,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: set[TP],
        timeout: float | None = None,  # noqa: ASYNC109 (Faust's signature)
        max_records: int | None = None,
    ) -> _Fetch:
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        return _Fetch(records, at=next(self._clock))

    async def seek_to_committed(self) -> Mapping[TP, int]:
        return cast("Mapping[TP, int]", await self.call_thread(self._rewind, self._ensure_consumer()))

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        """Partitions' ends as a fetch reports them, for table recovery (and Faust's lag figures).

        Faust (0.15.3) asks aiokafka's ``end_offsets``, a ListOffsets "latest", which Tansu 0.6 answers with the
        start of its newest batch plus one: recovery of a changelog would end before the records of that batch.
        A real Kafka answers both with the high watermark, so this changes nothing there. It can go when the
        embedded broker answers ListOffsets with the high watermark (``tests/test_broker_offsets.py`` pins it).
        """
        servers = [f"{url.host}:{url.port or 9092}" for url in self.app.conf.broker]
        ends = await high_watermarks(servers, [TopicPartition(tp.topic, tp.partition) for tp in partitions])
        return {TP(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def _rewind(self, consumer: aiokafka.AIOKafkaConsumer) -> dict[TP, int | None]:
        """aiokafka's ``seek_to_committed``, with every seek in one step and stamped on the clock.

        aiokafka awaits between partitions, so a fetch could return in between, and it leaves a partition with
        nothing committed (or 0) where it is, so what was fetched and dropped there would not be read again.
        Streamed partitions without a committed offset go back to their start; table changelogs are left to
        recovery, as aiokafka leaves them.
        """
        streamed = cast("_Consumer", self.consumer).streamed
        committed = {TP(tp.topic, tp.partition): await consumer.committed(tp) for tp in consumer.assignment()}
        for tp, offset in committed.items():
            if streamed(tp):
                consumer.seek(tp, offset if offset and offset > 0 else 0)
                self.rewound_at[tp] = next(self._clock)
            elif offset and offset > 0:
                consumer.seek(tp, offset)
        return committed


class _Consumer(faust_aiokafka.Consumer):
    """Faust's consumer, minus the ways a rebalance let it commit past records it never handed on (module doc)."""

    _thread: _ConsumerThread
    _fetched_at = -1
    _gave_up_waiting = False

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Mapping[TP, list[Any]]:  # noqa: ASYNC109
        records = await super()._getmany(active_partitions, timeout)
        self._fetched_at = records.at if isinstance(records, _Fetch) else -1
        return records

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (Faust's signature)
        """Faust's ``getmany``, without the records of a streamed partition rewound since they were fetched.

        The rewind moved the partition back to its committed offset, so they are read again; handed on, they
        jumped past Faust's read offset, which it takes as a gap to skip.
        """
        rewound_at = self._thread.rewound_at
        async for tp, message in super().getmany(timeout):
            if rewound_at.get(tp, -1) > self._fetched_at:
                log.debug("not handing on %s[%d]@%d: fetched before a rewind", tp.topic, tp.partition, message.offset)
                continue
            yield tp, message

    def streamed(self, tp: TP) -> bool:
        """Whether ``tp`` feeds a stream whose offsets are committed (not a table's changelog)."""
        return bool(self.app.topics.acks_enabled_for(tp.topic)) and not self._is_changelog_tp(tp)

    async def wait_empty(self) -> None:
        """Faust's wait until the streams acknowledged every record they took (and its commit after), at most
        until the stop deadline (``stop_wait`` from the stop's start; from now at a rebalance).

        Faust (0.15.3) waits here without a bound when the app stops, when the consumer stops and at a rebalance
        (``stream_wait_empty``). A record an agent never acknowledges, such as a classify batch whose results
        could not be sent (left unacknowledged to be read again), held every stop for ever; so did the commit
        after it when the broker stopped answering. Past the deadline nothing more is committed (``_commit``):
        what is not committed is read again after the restart. It can go when Faust bounds this wait
        (robinhood/faust#402, "Faust hangs with wait_empty") and its commit.
        """
        app = cast("StackwatchApp", self.app)
        stopping = app.stop_deadline()
        deadline = time.monotonic() + app.stop_wait if stopping is None else stopping
        remaining = deadline - time.monotonic()
        if remaining > 0:
            waiting = asyncio.ensure_future(super().wait_empty())
            try:
                done, _ = await asyncio.wait({waiting}, timeout=remaining)
            finally:
                if not waiting.done():
                    waiting.cancel()
            if done:
                waiting.result()
                return
        if stopping is None:
            log.warning(
                "rebalance: %d record(s) the agents took are not acknowledged within %.0fs; going on without them "
                "(they are read again)",
                len(self._unacked_messages),
                app.stop_wait,
            )
        elif not self._gave_up_waiting:
            self._gave_up_waiting = True
            log.warning(
                "stopping: the agents and the broker were not done within %.0fs (%d record(s) unacknowledged); "
                "nothing more is committed: what is not committed is read again after the restart",
                app.stop_wait,
                len(self._unacked_messages),
            )

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        app = cast("StackwatchApp", self.app)
        if cast(_Producer, app.producer).gave_up or app.stop_overdue():
            return False  # the stop is past its deadline, or what these offsets cover may not be sent (module doc)
        return bool(await super()._commit(offsets))

    def ack(self, message: Message) -> bool:
        if message.generation_id is None or message.generation_id == self.app.consumer_generation_id:
            return bool(super().ack(message))
        # Handed on before the last rebalance, which rewound its partition to the committed offset: it is read
        # again, so its offset must not become committable now. It is done here, so a stop does not wait for it.
        with ack_lock:
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
        return False


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class StackwatchApp(faust.App):
    """A Faust app on the corrected transport: its producer re-sends a request left unanswered for ``resend_after``
    seconds, its consumer does not commit past a fetch a rebalance overtook, and its stop waits at most
    ``stop_wait`` seconds for the agents' records in flight and for the broker (module doc)."""

    def __init__(
        self,
        id: str,
        *,
        resend_after: float = DEFAULT_RESEND_AFTER,
        stop_wait: float = DEFAULT_STOP_WAIT,
        **options: Any,
    ) -> None:
        self.resend_after = resend_after
        self.stop_wait = stop_wait
        self._stopping_since: float | None = None
        super().__init__(id, **options)

    def stop_deadline(self) -> float | None:
        """When (``time.monotonic()``) the stop stops waiting for records and the broker; None while running."""
        return None if self._stopping_since is None else self._stopping_since + self.stop_wait

    def stop_overdue(self) -> bool:
        deadline = self.stop_deadline()
        return deadline is not None and time.monotonic() >= deadline

    async def on_stop(self) -> None:
        self._stopping_since = time.monotonic()
        await super().on_stop()

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
