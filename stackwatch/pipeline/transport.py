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
re-sent batch may be stored twice by the broker; downstream is at-least-once already and the store idempotent.

Its consumer reads again every record it fetched but did not hand on to the streams. Faust (0.15.3) dropped the
rest of a fetch that a rebalance overtook, and a paused partition's records, while the broker position stayed past
them; and a record fetched before a rebalance's rewind but handed on after it made Faust take the offsets between
as a "gap" (as if they did not exist), drop the re-read records below it as already read, and commit past them.
Either lost articles (seen in the SIGKILL fault test: one record per partition, at the same offset). Also, a
record from before the last rebalance is not counted as processed when a stream acknowledges it: it is read again.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message, TransportT
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

__all__ = ["ResendingProducer", "StackwatchApp"]

log = logging.getLogger(__name__)

DEFAULT_RESEND_AFTER = 30.0


class ResendingProducer(aiokafka.AIOKafkaProducer):  # type: ignore[misc]  # aiokafka ships no types
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


class _Producer(faust_aiokafka.Producer):
    @property
    def _producer_type(self) -> type[aiokafka.AIOKafkaProducer]:
        return ResendingProducer

    def _settings_extra(self) -> dict[str, Any]:
        resend_after = getattr(self.app, "resend_after", DEFAULT_RESEND_AFTER)
        return {**super()._settings_extra(), "resend_after_ms": int(resend_after * 1000)}


class _Consumer(faust_aiokafka.Consumer):
    """Faust's consumer, minus the ways records it had fetched were committed unprocessed (see the module doc).

    Every seek stamps the partitions it moves with a clock: records of a partition moved after their fetch was
    issued are not handed on (the seek decided where it reads next). A rewind (``perform_seek``, after each
    rebalance and recovery) moves every streamed partition; table changelogs are positioned by recovery's seeks.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = 0
        self._rewound_at = 0
        self._sought_at: dict[TP, int] = {}
        self._fetched_at = (0, 0)  # the clock and the generation when the last fetch returned (_ConsumerThread)
        self._read_after_seek: dict[TP, int | None] = {}

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _streamed(self, tp: TP) -> bool:
        return bool(self.app.topics.acks_enabled_for(tp.topic)) and not self._is_changelog_tp(tp)

    def _moved_since(self, tp: TP, clock: int) -> bool:
        if self._streamed(tp) and self._rewound_at > clock:
            return True
        return self._sought_at.get(tp, 0) > clock

    async def perform_seek(self) -> None:
        self._rewound_at = self._tick()
        await super().perform_seek()
        self._rewound_at = self._tick()
        self._read_after_seek.update({tp: self._read_offset.get(tp) for tp in self.assignment() if self._streamed(tp)})

    def _restore_read_offset(self, tp: TP) -> None:
        """Put back the read offset the last seek of ``tp`` set, which Faust overwrote with a record handed on as
        the seek ran: records below it would be dropped as already read when the seek reads them again."""
        offset = self._read_after_seek.get(tp)
        if offset is None:
            self._read_offset.pop(tp, None)
        else:
            self._read_offset[tp] = offset

    async def seek(self, partition: TP, offset: int) -> None:
        self._sought_at[partition] = self._tick()
        await super().seek(partition, offset)
        self._sought_at[partition] = self._tick()

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        self._sought_at.update(dict.fromkeys(partitions, self._tick()))
        await super().seek_wait(partitions)
        self._sought_at.update(dict.fromkeys(partitions, self._tick()))

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        # aiokafka leaves a partition without a committed offset where it is, so a rewind skipped what was fetched
        # there and not yet processed. Nothing committed means: read from the start.
        unstarted = {tp: 0 for tp, offset in committed.items() if self._streamed(tp) and (not offset or offset < 0)}
        if unstarted:
            await super().seek_wait(unstarted)
        return committed

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (Faust's signature)
        """Faust's ``getmany``, except for the records it fetched but does not hand on.

        Faust dropped them silently: the rest of a fetch that a rebalance overtook, and the records of a partition
        paused meanwhile (as table recovery does); and it handed on a fetch that a rebalance's rewind overtook while
        it waited. aiokafka's position is past them all the same, so nothing read them again. Here the records of a
        partition a seek moved meanwhile are left to that seek; a partition with records not handed on for any
        other reason (paused, flow stopped, a new generation) is sought back to the first of them.
        """
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        started, generation = self._fetched_at
        if not self.flow_active:
            await self.perform_seek()  # as Faust does: nothing is handed on while the flow is stopped
            return
        unread: dict[TP, int] = {}
        handed: set[TP] = set()
        for tp, record in self.scheduler.iterate(records):
            if tp in unread or self._moved_since(tp, started):
                continue
            paused = active is not None and tp not in active and tp not in self._buffered_partitions
            if paused or not self.flow_active or self.app.consumer_generation_id != generation:
                unread[tp] = record.offset
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            handed.add(tp)
            yield tp, self._to_message(tp, record)
        for tp in handed:
            if self._moved_since(tp, started):
                self._restore_read_offset(tp)
        if unread:
            await cast(_ConsumerThread, self._thread).seek_back(unread, started)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Our topics are neither compacted nor transactional: a jump in offsets means records were skipped.
        log.warning("offsets %d-%d of %s[%d] were not read in order", offset_from, offset_to, tp.topic, tp.partition)
        await super()._add_gap(tp, offset_from, offset_to)

    def ack(self, message: Message) -> bool:
        if message.generation_id is None or message.generation_id == self.app.consumer_generation_id:
            return bool(super().ack(message))
        # Fetched before the last rebalance, which sought its partition back to the committed offset: it is read
        # again, so its offset must not become committable now. It is done here, so a stop does not wait for it.
        with ack_lock:
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
        return False


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """The thread aiokafka's consumer runs on, with fetches and seeks taking turns.

    A seek while a fetch waited let the fetch return records read after the seek, which the clock could not tell
    from records read before it: the consumer dropped fresh records as stale and a worker never read its partitions
    again. Taking turns (a seek waits at most one fetch's timeout, 1 s) means a fetch's records all come from before
    any seek stamped after it returned.
    """

    _turns: asyncio.Lock | None = None

    def _turn(self) -> asyncio.Lock:
        if self._turns is None:
            self._turns = asyncio.Lock()  # bound to this thread's loop on first use
        return self._turns

    async def _fetch_records(
        self,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: set[TP],
        timeout: float | None = None,  # noqa: ASYNC109 (Faust's signature)
        max_records: int | None = None,
    ) -> Any:
        async with self._turn():
            records = await super()._fetch_records(consumer, active_partitions, timeout, max_records)
            ours = cast(_Consumer, self.consumer)
            ours._fetched_at = (ours._clock, self.app.consumer_generation_id)
            return records

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await self.call_thread(self._seek_to_committed_in_turn)
        return committed

    async def _seek_to_committed_in_turn(self) -> Mapping[TP, int]:
        async with self._turn():
            committed: Mapping[TP, int] = await self._ensure_consumer().seek_to_committed()
            return committed

    async def _seek_wait(self, consumer: aiokafka.AIOKafkaConsumer, partitions: Mapping[TP, int]) -> None:
        async with self._turn():
            await self._seek_wait_in_turn(consumer, partitions)

    async def _seek_wait_in_turn(self, consumer: aiokafka.AIOKafkaConsumer, partitions: Mapping[TP, int]) -> None:
        await super()._seek_wait(consumer, partitions)
        ours = cast(_Consumer, self.consumer)
        ours._read_after_seek.update({tp: ours._read_offset.get(tp) for tp in partitions})

    async def seek_back(self, partitions: Mapping[TP, int], since: int) -> None:
        """Seek each partition back to its offset, unless a seek moved it after ``since`` (that seek stands).

        Decided in the seeks' turn: decided before it, a rewind queued meanwhile could run first and be undone.
        """
        await self.call_thread(self._seek_back_in_turn, self._ensure_consumer(), partitions, since)

    async def _seek_back_in_turn(
        self, consumer: aiokafka.AIOKafkaConsumer, partitions: Mapping[TP, int], since: int
    ) -> None:
        ours = cast(_Consumer, self.consumer)
        async with self._turn():
            assigned = consumer.assignment()
            back = {
                tp: offset for tp, offset in partitions.items() if tp in assigned and not ours._moved_since(tp, since)
            }
            if back:
                ours._sought_at.update(dict.fromkeys(back, ours._tick()))
                await self._seek_wait_in_turn(consumer, back)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class StackwatchApp(faust.App):
    """A Faust app whose Kafka producer re-sends a request left unanswered for ``resend_after`` seconds."""

    def __init__(self, id: str, *, resend_after: float = DEFAULT_RESEND_AFTER, **options: Any) -> None:
        self.resend_after = resend_after
        super().__init__(id, **options)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
