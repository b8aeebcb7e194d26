"""The producers: aiokafka's, keeping its topics and re-sending what the broker leaves unanswered, and Faust's on it.

    producer = TopicKeepingProducer(bootstrap_servers=servers, acks="all")        # what AckedProducer runs
    producer = ResendingProducer(resend_after_ms=30_000, bootstrap_servers=...)   # what the Faust app runs

Faust (0.15.3, ``faust.transport.drivers.aiokafka.Producer._settings_default``) hands aiokafka (0.14) one timeout,
``producer_request_timeout`` (20 minutes by default), as ``request_timeout_ms``, which aiokafka uses for three
things: how long one request may go unanswered (``AIOKafkaClient``), how long a batch may wait to be delivered (the
batch TTL of ``MessageAccumulator``) and how long ``send`` may wait for buffer space. A single produce request the
broker never answers therefore stalls its partition for 20 minutes, and with it every offset commit (Faust flushes
the producer before it commits) and so the worker's stop. After that, aiokafka fails the batch instead of retrying
it (``Sender._can_retry``: an expired batch is not retried), and Faust commits the input's offsets anyway: the
output is lost.

Here a request unanswered for ``resend_after`` seconds closes its connection and is sent again on a new one, as
Kafka's own producer does (``request.timeout.ms``), and a batch never expires: it is retried until the broker takes
it. A re-sent batch may be stored twice by the broker; downstream is at-least-once already and the store
idempotent. A ``send`` that fails for a reason that passes (no metadata for the topic yet, the buffer full) is
tried again instead of raising into the agent, which Faust would take as done with its event. While the app stops,
a flush waits at most until the stop's deadline (:mod:`.stop`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any, cast

import aiokafka
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as faust_aiokafka

from stackwatch.errors import BrokerError
from stackwatch.pipeline.kafka.adapter.stop import CHECK_EVERY

if TYPE_CHECKING:
    from stackwatch.pipeline.kafka.adapter.app import StackwatchApp

__all__ = ["MAX_SEND_BACKOFF", "AppProducer", "ResendingProducer", "TopicKeepingProducer"]

MAX_SEND_BACKOFF = 5.0
"""Seconds between tries of a ``send`` that fails for a reason that passes, at most."""

log = logging.getLogger(__name__)


class TopicKeepingProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka ships no types
    """aiokafka's producer, keeping the metadata of every topic it sent to.

    aiokafka (0.14, ``AIOKafkaClient.add_topic``) asks the broker for all topics until it is told of one, then only
    for those it was told of; its producer tells it only of topics it did not know yet. A topic known from the first
    answer (for all topics) therefore drops out of the metadata as soon as the producer first sends to another, new,
    topic. A batch for it that is still waiting then has no leader, and stays unsent until something else is sent to
    that topic (seen when a produce request went unanswered for seconds: the commit, which flushes the producer,
    waited with it). It can go when aiokafka keeps every topic it sent to in its metadata. Row 1 of the adapter's
    table; guarded by upstream::test_aiokafka_forgets_a_topic_it_knew_from_its_first_metadata and
    transport::test_a_topic_sent_to_stays_in_the_producers_metadata.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._kept: set[str] = set()

    async def send(self, topic: str, *args: object, **kwargs: object) -> asyncio.Future[object]:
        if topic not in self._kept:
            self._kept.add(topic)
            self.client.add_topic(topic)  # a metadata request follows; send waits for the topic's own
        return cast("asyncio.Future[object]", await super().send(topic, *args, **kwargs))


class ResendingProducer(TopicKeepingProducer):
    """aiokafka's producer, with one request's timeout apart from the delivery window (which is unbounded).

    ``request_timeout_ms`` keeps only one of aiokafka's meanings: how long ``send`` waits for buffer space.
    ``resend_after_ms`` bounds the wait for one reply (and the broker's own wait for replicas, and a ``send``'s wait
    for a topic's metadata), after which aiokafka closes the connection and retries the batch, because the batch has
    not expired. aiokafka (0.14) has no public
    setting for these: the client's ``_request_timeout_ms`` is read when a connection opens, the sender's is the
    produce request's own timeout, the accumulator's ``_batch_ttl`` decides whether a failed batch may be retried.
    It can go when aiokafka has a delivery timeout apart from the request timeout (Kafka's ``delivery.timeout.ms``).
    Row 2 of the adapter's table; guarded by upstream::test_aiokafka_drops_a_batch_whose_request_went_unanswered,
    upstream::test_aiokafka_uses_one_timeout_where_the_resending_producer_sets_three and
    transport::test_a_produce_request_the_broker_never_answers_is_sent_again.
    """

    def __init__(self, *, resend_after_ms: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client._request_timeout_ms = resend_after_ms
        self._sender._request_timeout_ms = resend_after_ms
        self._message_accumulator._batch_ttl = math.inf

    def abandon(self, error: Exception) -> None:
        """Fail every batch it holds with ``error``, and every later ``send``: a flush or a stop waiting for them
        then ends. For a stop only, when the broker does not take them (their batches never expire)."""
        self._message_accumulator.fail_all(error)


class AppProducer(faust_aiokafka.Producer):
    """Faust's producer on :class:`ResendingProducer`: sends retried while they fail for a reason that passes, and
    a flush bounded while the app stops."""

    gave_up = False
    """Set when a flush during the stop gave up on the broker; from then on nothing is committed
    (:meth:`.consumer.AppConsumer._commit`)."""
    unfinished_stop: asyncio.Future[None] | None = None
    """After a give-up, aiokafka's stop if :meth:`on_stop` did not wait for its end (mode's shutdown cancels it)."""

    @property
    def _producer_type(self) -> type[aiokafka.AIOKafkaProducer]:
        return ResendingProducer

    def _settings_extra(self) -> dict[str, Any]:
        resend_after = cast("StackwatchApp", self.app).resend_after  # only StackwatchApp makes this producer
        return {**super()._settings_extra(), "resend_after_ms": int(resend_after * 1000)}

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        """Faust's ``send``, retried while it fails for a reason that passes (the broker away, its metadata not
        known yet, the buffer full), instead of raising into the agent. Other errors raise as before.

        Faust (0.15.3, ``Producer.send``) raises aiokafka's error as ``ProducerSendError``, and acks the event an
        agent raised on, so its output would be lost. It can go when Faust retries retriable send errors itself.
        Row 3 of the adapter's table; guarded by upstream::test_faust_raises_a_send_that_fails_for_a_reason_that_passes
        and transport::test_a_send_failing_for_a_reason_that_passes_is_tried_until_the_broker_is_back.
        """
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
        when the app stops (``App.on_stop``), and our batches never expire (:class:`ResendingProducer`): with a
        broker that stopped answering, the worker's stop waited for ever. Past the app's stop deadline the held
        batches are given up (:meth:`ResendingProducer.abandon`) and this returns; ``AppConsumer._commit`` then
        commits nothing, so their inputs are read again after the restart. Outside a stop, a flush waits as long
        as the broker needs. It can go when Faust bounds its stop (robinhood/faust#402 is the wait part) and aiokafka
        has a delivery timeout that fails the commit. Row 4 of the adapter's table; guarded by
        transport::test_a_flush_during_the_stop_gives_up_at_the_deadline and
        stop::test_sigterm_with_the_broker_frozen_mid_burst_stops_by_itself_and_the_restart_stores_every_article_once.
        """
        if self.gave_up:
            return
        clock = cast("StackwatchApp", self.app).stop_clock
        flushing = asyncio.ensure_future(super().flush())
        try:
            while True:
                done, _ = await asyncio.wait({flushing}, timeout=CHECK_EVERY)
                if done:
                    flushing.result()
                    return
                if clock.overdue():
                    self._give_up(clock.wait)
                    return
        finally:
            if not flushing.done():
                flushing.cancel()

    async def on_stop(self) -> None:
        """Faust's producer stop; after a flush gave up, it does not wait for the requests the broker left
        unanswered (aiokafka's ``AIOKafkaProducer.stop`` waits up to ``resend_after`` for each): mode's shutdown
        cancels what is left (row 4)."""
        if not self.gave_up:
            await super().on_stop()
            return
        stopping = asyncio.ensure_future(super().on_stop())
        done, _ = await asyncio.wait({stopping}, timeout=CHECK_EVERY)
        if not done:
            self.unfinished_stop = stopping
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
