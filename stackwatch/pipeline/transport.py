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

Its consumer closes the way a rebalance let Faust (0.15.3) commit past records: a fetch that the rebalance
overtook while it waited went on to the streams after the rewind to the committed offsets, and Faust took the
records' jump past its read position as a "gap" (as if the offsets between did not exist), dropped the re-read
records below them as already read, and committed past them: lost articles (seen in the SIGKILL fault test, one
record per partition at the same offset). Also, a record from before the last rebalance is not counted as
processed when a stream acknowledges it (it is read again), and the rewind takes partitions that have no committed
offset back to their start (aiokafka leaves them where they are). Faust still takes forward jumps in offsets as
gaps after rewinds (dozens per SIGKILL fault test run); none lost a record in the runs since these fixes, but
the bookkeeping is Faust's and not proven here.
"""

from __future__ import annotations

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
        resend_after = cast("StackwatchApp", self.app).resend_after  # only StackwatchApp makes this transport
        return {**super()._settings_extra(), "resend_after_ms": int(resend_after * 1000)}


class _Consumer(faust_aiokafka.Consumer):
    """Faust's consumer, minus the way a rebalance let it commit past records it never handed on (module doc)."""

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (Faust's signature)
        """Faust's ``getmany``, with the generation read before the fetch instead of after it.

        Faust drops the rest of a fetch when a rebalance happens while it hands the records on, as the rewind to
        the committed offsets reads them again; but it reads the generation only once the fetch has returned, so a
        fetch that a rebalance overtook while it waited went on to the streams after the rewind, and Faust took the
        records' jump past its read position as a gap to skip.
        """
        generation = self.app.consumer_generation_id
        async for tp, message in super().getmany(timeout):
            if self.app.consumer_generation_id != generation and self._streamed(tp):
                continue  # the rewind reads it again; table changelogs are recovery's, which may not re-seek them
            yield tp, message

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        # aiokafka leaves a partition without a committed offset where it is, so the rewind after a rebalance did
        # not read again what was fetched there and dropped. Nothing committed means: read from the start.
        # (Not table changelogs: recovery positions those itself.)
        unstarted = {tp: 0 for tp, offset in committed.items() if self._streamed(tp) and (not offset or offset < 0)}
        if unstarted:
            await self.seek_wait(unstarted)  # on the consumer's thread, as aiokafka needs
        return committed

    def _streamed(self, tp: TP) -> bool:
        return bool(self.app.topics.acks_enabled_for(tp.topic)) and not self._is_changelog_tp(tp)

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


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    Producer = _Producer


class StackwatchApp(faust.App):
    """A Faust app on the corrected transport: its producer re-sends a request left unanswered for ``resend_after``
    seconds, and its consumer does not commit past a fetch a rebalance overtook (module doc)."""

    def __init__(self, id: str, *, resend_after: float = DEFAULT_RESEND_AFTER, **options: Any) -> None:
        self.resend_after = resend_after
        super().__init__(id, **options)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
