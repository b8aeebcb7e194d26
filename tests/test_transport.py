"""The Faust/aiokafka adapter does its job (stackwatch/pipeline/kafka/adapter/): on the real broker, records are
neither lost nor handed on twice across rewinds, a request the broker leaves unanswered is sent again, a send
that fails for a reason that passes is tried again, and a stop stops waiting at its deadline.

Each test names the row of the adapter's table it shows; ``tests/test_upstream.py`` holds the canaries that fail
when the upstream behaviour a row works around changes. The consumer's tests drive a Faust consumer whose partitions
are assigned by hand (``tests.helpers.kafka_parts.HandAssigned``: the broker, the fetches, the commits and the
seeks are real; the rebalance is replaced so that a rewind can come between a fetch and its records).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from faust.exceptions import ProducerSendError

from stackwatch.errors import BrokerError
from stackwatch.pipeline.kafka.adapter import ResendingProducer, StackwatchApp, TopicKeepingProducer
from stackwatch.pipeline.kafka.adapter.producer import AppProducer
from stackwatch.pipeline.kafka.broker import EmbeddedBroker
from tests.helpers.kafka_parts import (
    HandAssigned,
    broker_behind_proxy,
    create_topic,
    frozen,
    kept_after_sending_to_another,
    produce,
    read_values,
)

pytestmark = pytest.mark.integration


def app_on(broker: str, unique: str, **options: float) -> StackwatchApp:
    return StackwatchApp(unique, broker=f"kafka://{broker}", store="memory://", **options)  # type: ignore[arg-type]


# Row 1: TopicKeepingProducer


async def test_a_topic_sent_to_stays_in_the_producers_metadata(broker: str, unique: str) -> None:
    """The same scene as the canary ``test_aiokafka_forgets_a_topic_it_knew_from_its_first_metadata``."""
    assert await kept_after_sending_to_another(TopicKeepingProducer, broker, unique)


# Row 2: ResendingProducer


@pytest.mark.parametrize(
    "request_timeout_ms", [500, 600_000], ids=["past-the-delivery-window", "long-before-the-timeout"]
)
async def test_a_produce_request_the_broker_never_answers_is_sent_again(
    tmp_path: Path, unique: str, request_timeout_ms: int
) -> None:
    """Sent again on a new connection after ``resend_after`` (1s), whatever aiokafka's own ``request_timeout_ms``:
    at 500 ms aiokafka alone would have expired the batch when its request timed out; at 10 minutes it would
    have waited that long for the reply (the 60s below only bound the test)."""
    with broker_behind_proxy(tmp_path) as proxy:
        await create_topic(proxy.address, unique)
        proxy.silence_next_produce_to(unique)
        producer = ResendingProducer(
            resend_after_ms=1000, bootstrap_servers=proxy.address, request_timeout_ms=request_timeout_ms
        )
        await producer.start()
        try:
            delivered = await asyncio.wait_for(asyncio.ensure_future(await producer.send(unique, b"once")), 60)
        finally:
            await producer.stop()
        assert proxy.silenced == 1
        assert delivered.offset == 0
        assert await read_values(proxy.address, unique) == [b"once"]  # the swallowed request never reached it


# Row 3: AppProducer.send


async def test_a_send_failing_for_a_reason_that_passes_is_tried_until_the_broker_is_back(
    tmp_path: Path, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as own:
        app = app_on(own.bootstrap, unique, resend_after=1.0)
        await app.producer.start()
        try:
            with frozen(own), caplog.at_level(logging.WARNING, logger="stackwatch"):
                sending = asyncio.ensure_future(app.producer.send(unique, None, b"v", None, None, None))
                for _ in range(300):  # the first failure (no metadata for the topic within 1s) is retried
                    if "trying again" in caplog.text or sending.done():
                        break
                    await asyncio.sleep(0.1)
                assert not sending.done()
            delivered = await (await sending)  # the broker is back
        finally:
            await app.producer.stop()
        assert f"sending to {unique} failed (UnknownTopicOrPartitionError())" in caplog.text
        assert delivered.offset == 0


async def test_a_send_failing_for_any_other_reason_raises(broker: str, unique: str) -> None:
    app = app_on(broker, unique)
    await app.producer.start()
    try:
        with pytest.raises(ProducerSendError) as raised:
            await app.producer.send(unique, None, b"x" * 2_000_000, None, None, None)  # over producer_max_request_size
    finally:
        await app.producer.stop()
    assert isinstance(raised.value.__cause__, MessageSizeTooLargeError)


# Row 4: AppProducer.flush during the stop


async def test_a_flush_during_the_stop_gives_up_at_the_deadline(tmp_path: Path, unique: str) -> None:
    with broker_behind_proxy(tmp_path) as proxy:
        await create_topic(proxy.address, unique)
        app = app_on(proxy.address, unique, resend_after=3.0, stop_wait=1.0)  # the stop gives up before a re-send
        producer = app.producer
        assert isinstance(producer, AppProducer)
        await producer.start()
        held = producer._producer  # aiokafka's: its connections are closed below, as the process's exit would
        try:
            proxy.silence_next_produce_to(unique)
            sent = await producer.send(unique, None, b"held", None, None, None)
            app.stop_clock.start()
            await producer.flush()  # the broker never answers: this returns at the stop's deadline
            assert producer.gave_up
            with pytest.raises(BrokerError, match="before the stop gave up"):
                await sent
            await producer.stop()  # without waiting for the request the broker left unanswered
            assert producer.unfinished_stop is not None
        finally:
            if producer.unfinished_stop is not None:  # cancelled, as mode's shutdown cancels it
                producer.unfinished_stop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer.unfinished_stop
            await held.client.close()


# Rows 5-8: AppConsumer and its thread


async def test_every_fetched_record_is_handed_on_once_when_nothing_intervenes(broker: str, unique: str) -> None:
    await create_topic(broker, unique, partitions=2)
    await produce(broker, unique, {0: 3, 1: 3})
    async with HandAssigned(app_on(broker, unique), broker, unique, partitions=2) as assigned:
        await assigned.rewind()
        handed = await assigned.read_to_end({0: 3, 1: 3})
    assert sorted(handed) == [(partition, offset) for partition in (0, 1) for offset in range(3)]


async def test_records_fetched_before_a_rewind_are_not_handed_on_and_are_read_again(broker: str, unique: str) -> None:
    await create_topic(broker, unique)
    await produce(broker, unique, {0: 6})
    async with HandAssigned(app_on(broker, unique), broker, unique) as assigned:
        await assigned.commit({0: 2})
        await assigned.rewind()
        # One fetch returns 2-5; after the first record the partition is rewound: 3-5 of that fetch are stale.
        assert await assigned.handed_on(rewind_after=1) == [(0, 2)]
        # The rewind reads them again, from the committed offset: each after the rewind exactly once.
        assert await assigned.read_to_end({0: 6}) == [(0, offset) for offset in range(2, 6)]


async def test_records_fetched_after_a_rebalance_and_its_rewind_are_handed_on(broker: str, unique: str) -> None:
    await create_topic(broker, unique)
    await produce(broker, unique, {0: 6})
    app = app_on(broker, unique)
    async with HandAssigned(app, broker, unique) as assigned:
        await assigned.commit({0: 2})
        app.consumer_generation_id += 1  # a rebalance, and its rewind
        await assigned.rewind()
        assert await assigned.read_to_end({0: 6}) == [(0, offset) for offset in range(2, 6)]


async def test_a_rewind_takes_a_streamed_partition_without_a_committed_offset_to_its_start(
    broker: str, unique: str
) -> None:
    await create_topic(broker, unique, partitions=2)
    await produce(broker, unique, {0: 4, 1: 4})
    async with HandAssigned(app_on(broker, unique), broker, unique, partitions=2) as assigned:
        await assigned.rewind()
        await assigned.read_to_end({0: 4, 1: 4})
        await assigned.commit({0: 2})  # partition 1: nothing committed

        await assigned.rewind()
        assert [await assigned.position(0), await assigned.position(1)] == [2, 0]  # aiokafka leaves 1 at 4


async def test_a_rewind_leaves_table_changelogs_to_recovery(broker: str, unique: str) -> None:
    app = app_on(broker, unique)
    table = app.Table("state", default=int)
    changelog = table.changelog_topic.get_topic_name()
    await create_topic(broker, changelog)
    await produce(broker, changelog, {0: 4})
    async with HandAssigned(app, broker, changelog) as assigned:  # registered as streamed, and a changelog
        await assigned.rewind()
        assert await assigned.position() == 0  # the default reset (earliest), not a seek of ours
        await assigned.read_to_end({0: 4})

        await assigned.rewind()
        assert await assigned.position() == 4


async def test_the_stop_waits_for_records_taken_until_its_deadline_then_commits_nothing(
    broker: str, unique: str
) -> None:
    await create_topic(broker, unique)
    await produce(broker, unique, {0: 3})
    app = app_on(broker, unique, stop_wait=1.0)
    async with HandAssigned(app, broker, unique) as assigned:
        await assigned.rewind()
        await assigned.read_to_end({0: 3})
        first, second, _ = assigned.messages
        app.consumer.ack(first)
        app.stop_clock.start()

        # The agents never acknowledge the other two: it returns at the deadline (the 30s only bound this test).
        waiting = asyncio.ensure_future(app.consumer.wait_empty())
        done, _ = await asyncio.wait({waiting}, timeout=30)
        assert done
        assert len(app.consumer.unacked) == 2
        assert await assigned.committed() == 1  # what was acknowledged before the deadline is committed

        app.consumer.ack(second)
        assert await app.consumer.commit() is False
        assert await assigned.committed() == 1  # past the deadline, nothing more


async def test_a_record_from_before_a_rebalance_is_done_but_not_committable_when_acked(
    broker: str, unique: str
) -> None:
    """A pure bookkeeping rule of the consumer; the broker shows what is committed."""
    await create_topic(broker, unique)
    await produce(broker, unique, {0: 3})
    app = app_on(broker, unique)
    async with HandAssigned(app, broker, unique) as assigned:
        await assigned.commit({0: 1})
        await assigned.rewind()
        await assigned.read_to_end({0: 3})
        before = assigned.messages[0]  # offset 1, handed on before the rebalance
        app.consumer_generation_id += 1
        await assigned.rewind()

        assert app.consumer.ack(before) is False
        assert before.acked
        assert before not in app.consumer.unacked  # a stop does not wait for it
        await app.consumer.commit()
        assert await assigned.committed() == 1  # it is read again, so nothing moved

        await assigned.read_to_end({0: 3})
        again = assigned.messages[2]  # offset 1, read again after the rewind
        assert (again.offset, app.consumer.ack(again)) == (1, True)
        await app.consumer.commit()
        assert await assigned.committed() == 2
