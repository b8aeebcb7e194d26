"""Canaries: the upstream behaviour each workaround in stackwatch/pipeline/kafka/adapter/ exists for, as it is.

Every test here pins what faust-streaming, mode-streaming or aiokafka does today, mostly on the real session broker,
and names the row of the adapter's table (``stackwatch/pipeline/kafka/adapter/__init__.py``) it guards. A failing
canary is news, not a bug: upstream changed. Read the row, then either remove the workaround (when upstream now does
the right thing: its own test in ``tests/test_transport.py`` should still pass without it, and so should
``tests/test_faults.py``, ``tests/test_crash_default.py`` and ``tests/test_stop.py``) or adapt it, and update the
canary and the row together.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, RequestTimedOutError
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.structs import OffsetAndMetadata
from faust.exceptions import ProducerSendError
from faust.transport.conductor import Conductor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import tuples as faust_tuples
from faust.worker import Worker

from stackwatch.pipeline.kafka.adapter import ResendingProducer, StackwatchApp, StackwatchWorker, TopicKeepingProducer
from stackwatch.pipeline.kafka.adapter.app import AppTransport
from stackwatch.pipeline.kafka.adapter.consumer import AppConsumer, AppConsumerThread
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

PINNED = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1", "aiokafka": "0.14.0"}


def plain_app(broker: str, unique: str, **options: Any) -> faust.App:
    """Faust's own app, on its own transport."""
    return faust.App(unique, broker=f"kafka://{broker}", store="memory://", **options)


def test_the_installed_versions_are_those_the_workarounds_were_written_for() -> None:
    """When this fails (an upgrade): run this file. Each canary that fails names a row to revisit; when none does,
    read the upstream changelogs for the functions the rows name, then update the versions here and in the
    adapter's docstring."""
    assert {name: version(name) for name in PINNED} == PINNED


# Row 1: TopicKeepingProducer


async def test_aiokafka_forgets_a_topic_it_knew_from_its_first_metadata(broker: str, unique: str) -> None:
    """When this fails, aiokafka keeps the topics a producer sent to: ``TopicKeepingProducer`` can go (and
    ``AckedProducer`` and ``ResendingProducer`` derive from ``AIOKafkaProducer`` again)."""
    assert await kept_after_sending_to_another(AIOKafkaProducer, broker, unique) is False


# Row 2: ResendingProducer


async def test_faust_hands_aiokafka_one_request_timeout_of_twenty_minutes(broker: str, unique: str) -> None:
    """When this fails, Faust no longer hands ``producer_request_timeout`` to aiokafka as its one timeout: see
    whether ``ResendingProducer`` still gets ``resend_after_ms`` from ``AppProducer._settings_extra``, and whether
    a request left unanswered still stalls its partition (row 2)."""
    app = plain_app(broker, unique)
    assert app.conf.producer_request_timeout == 1200.0
    await app.producer.start()
    try:
        aiokafka_producer = app.producer._producer
        assert type(aiokafka_producer) is AIOKafkaProducer
        assert aiokafka_producer.client._request_timeout_ms == 1_200_000  # one request's reply
        assert aiokafka_producer._sender._request_timeout_ms == 1_200_000  # the produce request's own timeout
        assert aiokafka_producer._message_accumulator._batch_ttl == 1200.0  # a batch's delivery window
    finally:
        await app.producer.stop()


async def test_aiokafka_uses_one_timeout_where_the_resending_producer_sets_three() -> None:
    """When this fails, aiokafka moved or renamed the three private attributes ``ResendingProducer`` sets (or got
    a delivery timeout of its own: then use that, and drop the attributes)."""
    assert "delivery_timeout_ms" not in inspect.signature(AIOKafkaProducer).parameters
    assert callable(MessageAccumulator.fail_all)
    plain = AIOKafkaProducer(request_timeout_ms=1234)
    ours = ResendingProducer(resend_after_ms=1000, request_timeout_ms=1234)
    try:
        timeouts = [
            (p.client._request_timeout_ms, p._sender._request_timeout_ms, p._message_accumulator._batch_ttl)
            for p in (plain, ours)
        ]
        assert timeouts == [(1234, 1234, 1.234), (1000, 1000, float("inf"))]
        assert ours._request_timeout_ms == 1234  # what send waits for buffer space
    finally:
        await plain.stop()
        await ours.stop()


async def test_aiokafka_drops_a_batch_whose_request_went_unanswered(tmp_path: Path, unique: str) -> None:
    """When this fails, aiokafka retries a batch whose request timed out (or fails it later): see whether
    ``ResendingProducer`` is still needed; ``test_a_produce_request_the_broker_never_answers_is_sent_again`` shows
    what it must keep doing."""
    with broker_behind_proxy(tmp_path) as proxy:
        await create_topic(proxy.address, unique)
        proxy.silence_next_produce_to(unique)
        producer = AIOKafkaProducer(bootstrap_servers=proxy.address, request_timeout_ms=1000)
        await producer.start()
        try:
            with pytest.raises(RequestTimedOutError):
                await (await producer.send(unique, b"lost"))
        finally:
            await producer.stop()
        assert proxy.silenced == 1
        assert await read_values(proxy.address, unique) == []  # lost, not re-sent


# Row 3: AppProducer.send


async def test_faust_raises_a_send_that_fails_for_a_reason_that_passes(tmp_path: Path, unique: str) -> None:
    """When this fails, Faust's ``Producer.send`` retries retriable errors itself: ``AppProducer.send`` can go."""
    with EmbeddedBroker(log_file=tmp_path / "broker.log") as own:
        app = plain_app(own.bootstrap, unique, producer_request_timeout=1.0)
        await app.producer.start()
        try:
            with frozen(own), pytest.raises(ProducerSendError) as raised:
                await app.producer.send(unique, None, b"v", None, None, None)  # no metadata for it within 1s
        finally:
            await app.producer.stop()
    cause = raised.value.__cause__
    assert isinstance(cause, KafkaError)
    assert cause.retriable


# Row 5: AppConsumer.wait_empty


async def test_faust_waits_for_every_record_taken_without_a_bound_and_through_a_cancel(
    broker: str, unique: str
) -> None:
    """When this fails, Faust's ``wait_empty`` ends without every record acknowledged (a timeout of its own?):
    ``AppConsumer.wait_empty`` may go, if the commit after it is bounded too. Or it now ends when cancelled
    (``Consumer._wait_for_ack`` swallows the ``CancelledError``): then ``AppConsumer.wait_empty``'s cancel of it at
    the deadline really ends it, instead of leaving it to run until the records are acknowledged or the process
    exits, and the adapter's docstring should say so."""
    assert list(inspect.signature(faust_aiokafka.Consumer.wait_empty).parameters) == ["self"]
    await create_topic(broker, unique)
    await produce(broker, unique, {0: 1})
    app = plain_app(broker, unique)
    async with HandAssigned(app, broker, unique) as assigned:
        await assigned.rewind()
        await assigned.read_to_end({0: 1})
        waiting = asyncio.ensure_future(app.consumer.wait_empty())
        await asyncio.sleep(2)  # two of its rounds (a second each)
        waited = not waiting.done()
        waiting.cancel()
        await asyncio.sleep(2)
        went_on = not waiting.done()
        app.consumer.ack(assigned.messages[0])
        await waiting  # ends once the record is acknowledged, and not as cancelled
    assert (waited, went_on) == (True, True)


# Rows 6-8: AppConsumer and its thread


async def test_faust_hands_on_the_rest_of_a_fetch_a_rewind_overtook(broker: str, unique: str) -> None:
    """When this fails, Faust drops the records of a fetch a rewind overtook: the fetch and rewind stamps of
    ``AppConsumerThread`` and the filter in ``AppConsumer.getmany`` can go (rows 6 and 7)."""
    await create_topic(broker, unique)
    await produce(broker, unique, {0: 6})
    async with HandAssigned(plain_app(broker, unique), broker, unique) as assigned:
        await assigned.commit({0: 2})
        await assigned.rewind()
        # After the first record the partition is rewound to 2; Faust hands on the rest of the fetch anyway, past
        # the position the rewind set (in the service, past Faust's read offset: a gap, committed past).
        assert await assigned.handed_on(rewind_after=1) == [(0, offset) for offset in range(2, 6)]


async def test_aiokafka_seek_to_committed_leaves_an_uncommitted_partition_where_it_is(broker: str, unique: str) -> None:
    """When this fails, aiokafka rewinds a partition without a committed offset (to its start, or by the reset
    policy): ``AppConsumerThread._rewind`` may go back to aiokafka's ``seek_to_committed`` if it also seeks every
    partition in one step (row 7)."""
    await create_topic(broker, unique, partitions=2)
    await produce(broker, unique, {0: 4, 1: 4})
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=unique, enable_auto_commit=False)
    await consumer.start()
    try:
        first, second = TopicPartition(unique, 0), TopicPartition(unique, 1)
        consumer.assign([first, second])
        await consumer.commit({first: OffsetAndMetadata(2, "")})
        consumer.seek(first, 4)
        consumer.seek(second, 4)
        committed = await consumer.seek_to_committed()
        assert committed == {first: 2, second: None}
        assert [await consumer.position(first), await consumer.position(second)] == [2, 4]
    finally:
        await consumer.stop()


async def test_faust_counts_the_ack_of_a_record_from_before_a_rebalance(broker: str, unique: str) -> None:
    """When this fails, Faust ignores the ack of a record from an older generation: ``AppConsumer.ack`` can go."""
    await create_topic(broker, unique)
    await produce(broker, unique, {0: 3})
    app = plain_app(broker, unique)
    async with HandAssigned(app, broker, unique) as assigned:
        await assigned.commit({0: 1})
        await assigned.rewind()
        await assigned.read_to_end({0: 3})
        app.consumer_generation_id += 1
        await assigned.rewind()
        assert app.consumer.ack(assigned.messages[0]) is True
        await app.consumer.commit()
        assert await assigned.committed() == 2  # past a record its partition was rewound to read again


# Row 11: StackwatchWorker

WORKER_SCRIPT = textwrap.dedent(
    """
    import sys

    import mode

    from stackwatch.pipeline.kafka.adapter import StackwatchApp, StackwatchWorker

    class Marker(mode.Service):
        async def on_started(self):
            print("started", flush=True)

        async def on_stop(self):
            print("stopping", flush=True)

    async def before_stop():
        print("before the stop", flush=True)

    broker, name = sys.argv[1:]
    app = StackwatchApp(
        name, broker="kafka://" + broker, store="memory://", web_enabled=False, worker_redirect_stdouts=False
    )
    StackwatchWorker(
        app,
        Marker(),
        before_stop=before_stop,
        configure_logging=lambda logger: print("logging", flush=True),
        loglevel="WARNING",
        quiet=True,
    ).execute_from_commandline()
    """
)


def test_mode_runs_stop_on_signal_on_sigterm_before_anything_stops(broker: str, unique: str) -> None:
    """When this fails, mode no longer stops a worker through ``Worker._stop_on_signal`` (or calls the logging hook
    otherwise): ``StackwatchWorker`` must find the new place, else the drain before the stop is skipped."""
    marks = ("logging", "started", "before the stop", "stopping")
    seen: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, broker, unique], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:  # until it started (or ended)
                seen += [mark for mark in marks if line.rstrip().endswith(mark)]  # after the spinner's escapes
                if seen[-1:] == ["started"]:
                    break
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    seen += [mark for line in out.splitlines() for mark in marks if line.rstrip().endswith(mark)]
    assert (process.returncode, seen) == (0, list(marks)), err[-3000:]


# Every row: the private names the adapter overrides or reads

OVERRIDES: dict[type, tuple[type, set[str], set[str]]] = {
    # ours: (upstream base, names overriding upstream's, names of our own that upstream must not have)
    TopicKeepingProducer: (AIOKafkaProducer, {"__init__", "send"}, {"_kept"}),
    ResendingProducer: (AIOKafkaProducer, {"__init__"}, {"abandon"}),
    AppProducer: (
        faust_aiokafka.Producer,
        {"_producer_type", "_settings_extra", "send", "flush", "on_stop"},
        {"gave_up", "unfinished_stop", "_give_up"},
    ),
    AppConsumerThread: (
        faust_aiokafka.AIOKafkaConsumerThread,
        {"__init__", "_fetch_records", "seek_to_committed", "_highwaters"},
        {"_clock", "rewound_at", "_rewind"},
    ),
    AppConsumer: (
        faust_aiokafka.Consumer,
        {"_thread", "_new_consumer_thread", "_getmany", "getmany", "wait_empty", "_commit", "ack"},
        {"_fetched_at", "_gave_up_waiting", "streamed"},
    ),
    AppTransport: (faust_aiokafka.Transport, {"Consumer", "Producer"}, set()),
    StackwatchApp: (faust.App, {"__init__", "on_stop", "_new_transport"}, {"resend_after", "stop_clock", "stop_wait"}),
    StackwatchWorker: (
        Worker,
        {"__init__", "_stop_on_signal", "_on_sigint", "_on_sigterm", "on_setup_root_logger", "on_startup_finished"},
        {"_before_stop", "_configure_logging", "_on_started", "stop_signals"},
    ),
}


_MADE_FOR_EVERY_CLASS = {"_abc_impl", "logger"}
"""Set on every subclass by abc and by mode's ``Service`` (its class logger), not by us."""


def _named(function: Callable[..., Any]) -> tuple[list[str], bool]:
    """A function's named parameters, and whether it forwards the rest (``*args`` or ``**kwargs``)."""
    parameters = inspect.signature(function).parameters.values()
    named = [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return named, any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)


def _upstream_has(base: type, instance: object, name: str) -> bool:
    annotated = any(name in inspect.get_annotations(klass) for klass in base.__mro__)
    return annotated or hasattr(base, name) or hasattr(instance, name)


@pytest.fixture
async def upstream_instances(broker: str, unique: str) -> Any:
    """One instance of each upstream class the adapter derives from (not started), to see instance attributes."""
    app = plain_app(broker, unique)
    aiokafka_producer = AIOKafkaProducer(bootstrap_servers=broker)
    yield {
        AIOKafkaProducer: aiokafka_producer,
        faust_aiokafka.Producer: app.producer,
        faust_aiokafka.AIOKafkaConsumerThread: app.consumer._thread,
        faust_aiokafka.Consumer: app.consumer,
        faust_aiokafka.Transport: app.transport,
        faust.App: app,
        Worker: Worker(app, loglevel="WARNING", quiet=True),
    }
    await aiokafka_producer.stop()
    app.consumer._thread.thread_loop.close()  # made with the consumer; nothing started, so nothing closes it


@pytest.mark.parametrize("ours", list(OVERRIDES), ids=lambda cls: cls.__name__)
def test_every_private_method_the_adapter_overrides_is_still_there(ours: type, upstream_instances: Any) -> None:
    """When this fails, upstream renamed, removed or re-signed a method the adapter overrides (the override no
    longer runs, or runs with the wrong arguments), or took a name the adapter uses for its own: re-read the
    upstream code and move the workaround to its new place. A name added to an adapter class must be listed here."""
    base, overrides, own = OVERRIDES[ours]
    instance = upstream_instances[base]
    defined = {name for name in vars(ours) if not name.startswith("__") or name == "__init__"}
    defined = (defined | set(inspect.get_annotations(ours))) - _MADE_FOR_EVERY_CLASS
    assert defined <= overrides | own, "list every name the class defines in OVERRIDES"
    for name in sorted(overrides):
        assert _upstream_has(base, instance, name), f"{base.__qualname__}.{name} is gone"
        mine, theirs = inspect.getattr_static(ours, name, None), inspect.getattr_static(base, name, None)
        if isinstance(mine, property):
            assert isinstance(theirs, property), name
        elif inspect.isfunction(mine) and name != "__init__":
            assert inspect.isfunction(theirs), name
            (my_names, forwards), (their_names, _) = _named(mine), _named(theirs)
            assert my_names == (their_names[: len(my_names)] if forwards else their_names), name
            assert inspect.iscoroutinefunction(mine) == inspect.iscoroutinefunction(theirs), name
    for name in sorted(own):
        assert not _upstream_has(base, instance, name), f"{base.__qualname__} now has {name} of its own"


async def test_the_private_parts_the_adapter_and_its_tests_use_are_still_there(broker: str, unique: str) -> None:
    """When this fails, upstream renamed an attribute the adapter reads (consumer.py, producer.py) or the test
    harness uses (tests/helpers/kafka_parts.py): follow the rename."""
    with faust_tuples.ack_lock, faust_tuples.ack_lock:  # Faust's lock over its ack bookkeeping, re-entrant
        pass
    app = plain_app(broker, unique)
    try:
        consumer = app.consumer
        assert len(consumer._unacked_messages) == 0
        assert consumer._waiting_for_ack is None
        assert consumer._is_changelog_tp(faust_tuples.TP(unique, 0)) is False
        assert app.consumer_generation_id == 0
        assert callable(consumer._thread.call_thread)
        assert callable(consumer._thread._ensure_consumer)
    finally:
        app.consumer._thread.thread_loop.close()
    assert app.producer._producer is None  # until it starts
    assert "generation_id" in inspect.signature(faust_tuples.Message).parameters
    assert _named(AIOKafkaClient.add_topic) == (["self", "topic"], False)
    assert inspect.iscoroutinefunction(Conductor._update_indices)


ADAPTER = Path(__file__).resolve().parent.parent / "stackwatch" / "pipeline" / "kafka" / "adapter"
GUARD = re.compile(r"\b([a-z_]+)::(test_\w+)")


def test_every_guard_the_adapter_names_exists() -> None:
    """When this fails, a test named as a guard in the adapter's docstrings (``file::test`` for
    ``tests/test_<file>.py``) was renamed or removed: name the test that guards that row now."""
    named = {match.groups() for path in ADAPTER.glob("*.py") for match in GUARD.finditer(path.read_text())}
    assert len(named) >= 20
    tests = Path(__file__).resolve().parent
    missing = [
        f"{file}::{test}"
        for file, test in sorted(named)
        if not re.search(rf"^(async )?def {test}\(", (tests / f"test_{file}.py").read_text(), re.MULTILINE)
    ]
    assert missing == []
