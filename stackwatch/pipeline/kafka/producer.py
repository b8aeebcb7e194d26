"""Thin wrappers over aiokafka: our settings in, our errors out (its workarounds are in :mod:`.adapter`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from stackwatch.errors import BrokerError
from stackwatch.pipeline.kafka.adapter import TopicKeepingProducer

__all__ = ["AckedProducer", "start_with_retry", "wait_for_broker"]

log = logging.getLogger(__name__)


async def start_with_retry(
    client: AIOKafkaProducer | AIOKafkaConsumer, what: str, servers: Sequence[str], stop: asyncio.Event
) -> bool:
    """Start an aiokafka client, retrying with backoff while the broker is unreachable. False if stopped."""
    delay = 1.0
    while not stop.is_set():
        try:
            await client.start()
            return True
        except KafkaError as error:
            log.warning("%s: broker %s unreachable (%s); retrying in %.0fs", what, ",".join(servers), error, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # not wait_for: see Scheduler._run
                    await stop.wait()
            delay = min(delay * 2, 30.0)
    return False


class AckedProducer:
    """Sends batches of (topic, key, value) and returns only when the broker acknowledged all of them."""

    def __init__(self, servers: Sequence[str], client_id: str, request_timeout: float = 30.0) -> None:
        self.servers = list(servers)
        self.client_id = client_id
        self.request_timeout = request_timeout
        self._producer: TopicKeepingProducer | None = None

    async def start(self, stop: asyncio.Event) -> bool:
        """Connect (aiokafka clients must be created inside the running loop); False if stopped first."""
        self._producer = TopicKeepingProducer(
            bootstrap_servers=self.servers,
            client_id=self.client_id,
            acks="all",
            linger_ms=5,
            max_request_size=8 * 1024 * 1024,
            request_timeout_ms=int(self.request_timeout * 1000),  # then send_all fails, and the caller retries
        )
        return await start_with_retry(self._producer, "producer", self.servers, stop)

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send_all(self, records: Sequence[tuple[str, bytes | None, bytes]]) -> None:
        if self._producer is None:
            raise BrokerError("producer is not started")
        producer = self._producer
        try:
            futures = [await producer.send(topic, value, key=key) for topic, key, value in records]
            await asyncio.gather(*futures)
        except KafkaError as error:
            raise BrokerError(f"broker did not acknowledge {len(records)} records: {error}") from error


async def wait_for_broker(servers: Sequence[str], *, first_delay: float = 1.0, max_delay: float = 30.0) -> None:
    """Return once the Kafka cluster answers a metadata request; log and back off while it does not."""
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        client = AIOKafkaClient(bootstrap_servers=list(servers), request_timeout_ms=10_000)
        try:
            await client.bootstrap()
            if attempt > 1:
                log.info("broker %s reachable again", ",".join(servers))
            return
        except KafkaError as error:
            log.warning(
                "broker %s unreachable (%s); waiting %.0fs before trying again", ",".join(servers), error, delay
            )
        finally:
            await client.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
