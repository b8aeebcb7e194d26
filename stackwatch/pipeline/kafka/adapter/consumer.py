"""The app's consumer: it never lets an offset be committed past a record the streams did not get.

It closes the way a rebalance let Faust (0.15.3) commit past records: a fetch that returned before the rewind to
the committed offsets went on to the streams after it, and Faust took the records' jump past its read position as a
"gap" (``Consumer._drain_messages`` and ``_add_gap``: as if the offsets between did not exist), dropped the re-read
records below them as already read, and committed past them: lost articles (seen in the SIGKILL fault test, one
record per partition at the same offset). Here one clock on the consumer's thread stamps each fetch as it returns
and each rewind of a partition as it happens, and a record is handed on only if no rewind of its partition came
after its fetch. Faust tells the two apart by the rebalance's generation instead (``Consumer.getmany``), which is not
when the partition moved: a first fix on that basis also dropped records fetched after the rewind, which were then
never read (two lost in CI). Also, a record from before the last rebalance is not counted as processed when a stream
acknowledges it (it is read again), and the rewind takes streamed partitions that have no committed offset back to
their start (aiokafka's ``AIOKafkaConsumer.seek_to_committed`` leaves them where they are). Faust still takes
forward jumps in offsets as gaps after rewinds; the bookkeeping is Faust's and not proven here beyond the fault
tests (``tests/test_faults.py``, ``tests/test_crash_default.py``).

While the app stops, the wait for the agents' acknowledgements is bounded and commits end at the stop's deadline
(:mod:`.stop`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import aiokafka
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from stackwatch.pipeline.kafka.lag import high_watermarks

if TYPE_CHECKING:
    from stackwatch.pipeline.kafka.adapter.app import StackwatchApp
    from stackwatch.pipeline.kafka.adapter.producer import AppProducer

__all__ = ["AppConsumer", "AppConsumerThread"]

log = logging.getLogger(__name__)


class _Fetch(dict[TP, list[Any]]):
    """The records one fetch returned, with the consumer thread's clock when it returned them."""

    def __init__(self, records: Mapping[TP, list[Any]], at: int) -> None:
        super().__init__(records)
        self.at = at


class AppConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """The thread that runs aiokafka's consumer, keeping one clock for fetches and rewinds (module doc)."""

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
        """Faust's fetch, stamped on the clock as it returns."""
        records = await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)
        return _Fetch(records, at=next(self._clock))

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Faust's rewind to the committed offsets (``perform_seek`` at a rebalance), as :meth:`_rewind`."""
        return cast("Mapping[TP, int]", await self.call_thread(self._rewind, self._ensure_consumer()))

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        """Partitions' ends as a fetch reports them, for table recovery (and Faust's lag figures).

        Faust (0.15.3) asks aiokafka's ``end_offsets``, a ListOffsets "latest", which Tansu 0.6 answers with the
        start of its newest batch plus one: recovery of a changelog would end before the records of that batch.
        A real Kafka answers both with the high watermark, so this changes nothing there. A workaround of the
        broker, not of Faust: only tables need it, and with the embedded broker the rules keep no tables (their
        state is rebuilt from the store), so it matters where a Tansu is named in ``kafka.bootstrap_servers`` (as
        ``tests/test_faults.py`` does). It can go when Tansu answers ListOffsets with the high watermark. Row 9 of
        the adapter's table; guarded by
        broker_offsets::test_the_broker_answers_latest_with_the_newest_batch_start_plus_one_not_the_high_watermark.
        """
        servers = [f"{url.host}:{url.port or 9092}" for url in self.app.conf.broker]
        ends = await high_watermarks(servers, [TopicPartition(tp.topic, tp.partition) for tp in partitions])
        return {TP(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def _rewind(self, consumer: aiokafka.AIOKafkaConsumer) -> dict[TP, int | None]:
        """aiokafka's ``seek_to_committed``, with every seek in one step and stamped on the clock.

        aiokafka (0.14) awaits ``committed`` between partitions, so a fetch could return in between, and it leaves
        a partition with nothing committed (or 0) where it is, so what was fetched and dropped there would not be
        read again. Streamed partitions without a committed offset go back to their start; table changelogs are
        left to recovery, as aiokafka leaves them. Row 7 of the adapter's table; guarded by
        upstream::test_aiokafka_seek_to_committed_leaves_an_uncommitted_partition_where_it_is and
        transport::test_a_rewind_takes_a_streamed_partition_without_a_committed_offset_to_its_start.
        """
        streamed = cast("AppConsumer", self.consumer).streamed
        committed = {TP(tp.topic, tp.partition): await consumer.committed(tp) for tp in consumer.assignment()}
        for tp, offset in committed.items():
            if streamed(tp):
                consumer.seek(tp, offset if offset and offset > 0 else 0)
                self.rewound_at[tp] = next(self._clock)
            elif offset and offset > 0:
                consumer.seek(tp, offset)
        return committed


class AppConsumer(faust_aiokafka.Consumer):
    """Faust's consumer, minus the ways a rebalance let it commit past records it never handed on (module doc),
    and with its waits bounded while the app stops."""

    _thread: AppConsumerThread
    _fetched_at = -1
    _gave_up_waiting = False

    def _new_consumer_thread(self) -> AppConsumerThread:
        return AppConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Mapping[TP, list[Any]]:  # noqa: ASYNC109
        records = await super()._getmany(active_partitions, timeout)
        self._fetched_at = records.at if isinstance(records, _Fetch) else -1
        return records

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (Faust's signature)
        """Faust's ``getmany``, without the records of a streamed partition rewound since they were fetched.

        The rewind moved the partition back to its committed offset, so they are read again; handed on, they
        jumped past Faust's read offset, which it takes as a gap to skip. It can go when Faust drops a fetch a
        rewind overtook (or stops taking jumps as gaps). Row 6 of the adapter's table; guarded by
        upstream::test_faust_hands_on_the_rest_of_a_fetch_a_rewind_overtook,
        transport::test_records_fetched_before_a_rewind_are_not_handed_on_and_are_read_again and the fault tests.
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
        after it when the broker stopped answering. Past the deadline nothing more is committed (:meth:`_commit`):
        what is not committed is read again after the restart. Faust's wait, cancelled here, goes on until its
        records are acknowledged (``Consumer._wait_for_ack`` swallows the cancel); its commits past the deadline are
        refused. It can go when Faust bounds this wait (robinhood/faust#402, "Faust hangs with wait_empty") and its
        commit. Row 5 of the adapter's table; guarded by
        upstream::test_faust_waits_for_every_record_taken_without_a_bound_and_through_a_cancel and
        transport::test_the_stop_waits_for_records_taken_until_its_deadline_then_commits_nothing.
        """
        app = cast("StackwatchApp", self.app)
        stopping = app.stop_clock.deadline()
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
        """Faust's commit, refused once the stop is past its deadline or a flush during the stop gave up: what
        these offsets cover may not be done or sent (rows 4 and 5)."""
        app = cast("StackwatchApp", self.app)
        if cast("AppProducer", app.producer).gave_up or app.stop_clock.overdue():
            return False
        return bool(await super()._commit(offsets))

    def ack(self, message: Message) -> bool:
        """Faust's ack, except for a record handed on before the last rebalance: that rebalance rewound its
        partition to the committed offset, so it is read again and its offset must not become committable now. It
        is done here, so a stop does not wait for it. Faust (0.15.3, ``Consumer.ack``) counts it. Row 8 of the
        adapter's table; guarded by upstream::test_faust_counts_the_ack_of_a_record_from_before_a_rebalance and
        transport::test_a_record_from_before_a_rebalance_is_done_but_not_committable_when_acked."""
        if message.generation_id is None or message.generation_id == self.app.consumer_generation_id:
            return bool(super().ack(message))
        with ack_lock:
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
        return False
