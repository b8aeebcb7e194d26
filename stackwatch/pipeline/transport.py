"""Faust's Kafka transport, with a producer that re-sends what the broker leaves unanswered.

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
"""

from __future__ import annotations

import math
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

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
        # (aiokafka is pinned <0.15; tests/test_transport.py shows the re-send on a real broker).
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


class _Transport(faust_aiokafka.Transport):
    Producer = _Producer


class StackwatchApp(faust.App):
    """A Faust app whose Kafka producer re-sends a request left unanswered for ``resend_after`` seconds."""

    def __init__(self, id: str, *, resend_after: float = DEFAULT_RESEND_AFTER, **options: Any) -> None:
        self.resend_after = resend_after
        super().__init__(id, **options)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
