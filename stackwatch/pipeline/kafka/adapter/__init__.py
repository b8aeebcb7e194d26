"""Every workaround of Faust, mode and aiokafka behaviour, in one place.

    from stackwatch.pipeline.kafka.adapter import StackwatchApp, StackwatchWorker, TopicKeepingProducer

Written for faust-streaming 0.15.3, mode-streaming 0.7.1 and aiokafka 0.14.0 (``tests/test_upstream.py`` pins
them). Each row of the table below names what upstream does, what we do instead, why, when it can go, and the tests
that guard it: a canary in ``tests/test_upstream.py`` fails when the upstream behaviour changes (then re-read the
row: the workaround may be moot, or need a change), and a test in ``tests/test_transport.py`` (or a fault test)
shows the workaround does its job. Guards are written ``file::test`` for ``tests/test_<file>.py``, and a test
checks that each one named in this package exists. The modules: :mod:`.producer`, :mod:`.consumer`, :mod:`.stop`
(the stop's clock), :mod:`.app`, :mod:`.worker`.

 1. ``TopicKeepingProducer`` (producer.py): every topic sent to stays in the producer's metadata.
    Upstream  aiokafka ``AIOKafkaClient.add_topic``: the client asks for all topics until told of one, then only
              for those; the producer tells it only of new ones, so a topic known from the first answer drops out.
    Why       a batch for the dropped topic has no leader and waits (and the commit, which flushes, with it).
    Goes when aiokafka keeps every topic it sent to in its metadata.
    Guards    upstream::test_aiokafka_forgets_a_topic_it_knew_from_its_first_metadata
              transport::test_a_topic_sent_to_stays_in_the_producers_metadata
 2. ``ResendingProducer`` (producer.py): a request unanswered for ``kafka.request_timeout`` is sent again on a new
    connection; a batch never expires. Sets aiokafka's private ``client._request_timeout_ms``,
    ``_sender._request_timeout_ms`` and ``_message_accumulator._batch_ttl``.
    Upstream  Faust ``aiokafka.Producer._settings_default`` hands ``producer_request_timeout`` (1200 s) to aiokafka
              as ``request_timeout_ms``, which aiokafka uses as the request timeout, the produce request's timeout
              and the batch TTL; ``Sender._can_retry`` drops an expired batch.
    Why       one unanswered request stalled its partition, every commit and the stop for 20 minutes, then its
              batch was dropped while Faust committed the input: lost output.
    Goes when aiokafka has a delivery timeout apart from the request timeout (Kafka's ``delivery.timeout.ms``).
    Guards    upstream::test_faust_hands_aiokafka_one_request_timeout_of_twenty_minutes
              upstream::test_aiokafka_uses_one_timeout_where_the_resending_producer_sets_three
              upstream::test_aiokafka_drops_a_batch_whose_request_went_unanswered
              transport::test_a_produce_request_the_broker_never_answers_is_sent_again
              faults::test_a_produce_request_the_broker_never_answers_is_sent_again
 3. ``AppProducer.send`` (producer.py): retried with backoff while it fails for a retriable reason or a timeout.
    Upstream  Faust ``aiokafka.Producer.send`` raises aiokafka's error as ``ProducerSendError``, and an agent that
              raises has its event acknowledged.
    Why       the output of that event would be lost (the broker away, a topic's metadata not known yet).
    Goes when Faust retries retriable send errors itself.
    Guards    upstream::test_faust_raises_a_send_that_fails_for_a_reason_that_passes
              transport::test_a_send_failing_for_a_reason_that_passes_is_tried_until_the_broker_is_back
              transport::test_a_send_failing_for_any_other_reason_raises
 4. ``AppProducer.flush`` and ``.on_stop`` (producer.py): bounded by the stop's deadline (``StopClock``, stop.py);
    past it the held batches are abandoned and no offset is committed any more.
    Upstream  Faust awaits ``Producer.flush`` without a bound before each commit (``Consumer._commit_offsets``),
              at a rebalance and in ``App.on_stop``; aiokafka's ``AIOKafkaProducer.stop`` waits for requests.
    Why       with batches that never expire (row 2), a broker that stopped answering held the stop for ever.
    Note      a request still unanswered after the give-up makes aiokafka's sender raise ``KeyError`` when it
              times out (it re-queues a batch ``fail_all`` already failed); only the stop left running meets it,
              and mode's shutdown cancels that first.
    Goes when Faust bounds its stop and aiokafka has a delivery timeout (then row 2 goes too).
    Guards    transport::test_a_flush_during_the_stop_gives_up_at_the_deadline
              stop::test_sigterm_with_the_broker_frozen_mid_burst_stops_by_itself_and_the_restart_stores_every_article_once
 5. ``AppConsumer.wait_empty`` and ``._commit`` (consumer.py): the wait for the agents' acknowledgements ends at
    the stop's deadline (``stop_wait`` from now at a rebalance); past it nothing more is committed.
    Upstream  Faust ``Consumer.wait_empty`` (at the stop, the consumer's stop and a rebalance) waits without a
              bound for every record taken (robinhood/faust#402), and goes on when cancelled
              (``Consumer._wait_for_ack`` swallows the ``CancelledError``).
    Why       a record an agent never acknowledges (a classify batch left to be read again) held every stop.
              Faust's own wait, cancelled at the deadline, goes on until its records are acknowledged or the
              process exits; its commits past the stop's deadline are refused.
    Goes when Faust bounds this wait and the commit after it.
    Guards    upstream::test_faust_waits_for_every_record_taken_without_a_bound_and_through_a_cancel
              transport::test_the_stop_waits_for_records_taken_until_its_deadline_then_commits_nothing
              stop::test_sigterm_during_a_burst_with_batches_in_the_model_processes_stops_by_itself
 6. ``AppConsumerThread._fetch_records`` and ``AppConsumer._getmany``/``.getmany`` (consumer.py): fetches and
    rewinds stamped on one clock; a record fetched before a rewind of its partition is not handed on.
    Upstream  Faust ``Consumer.getmany`` tells a stale fetch by the rebalance's generation only, and
              ``Consumer._drain_messages`` takes a jump past the read offset as a gap (``_add_gap``) to commit past.
    Why       a fetch a rewind overtook jumped past the re-read records: lost articles in the SIGKILL fault test.
    Goes when Faust drops a fetch a rewind overtook (or stops taking jumps as gaps).
    Guards    upstream::test_faust_hands_on_the_rest_of_a_fetch_a_rewind_overtook
              transport::test_records_fetched_before_a_rewind_are_not_handed_on_and_are_read_again
              transport::test_records_fetched_after_a_rebalance_and_its_rewind_are_handed_on
              faults::test_sigkill_at_random_moments_loses_nothing_and_counts_nothing_twice
 7. ``AppConsumerThread.seek_to_committed``/``._rewind`` (consumer.py): every seek in one step; a streamed
    partition without a committed offset goes back to its start; changelogs are left to recovery.
    Upstream  aiokafka ``AIOKafkaConsumer.seek_to_committed`` awaits between partitions and leaves a partition
              with nothing committed (or 0) where it is.
    Why       records row 6 dropped there would never be read again.
    Goes when row 6 goes.
    Guards    upstream::test_aiokafka_seek_to_committed_leaves_an_uncommitted_partition_where_it_is
              transport::test_a_rewind_takes_a_streamed_partition_without_a_committed_offset_to_its_start
              transport::test_a_rewind_leaves_table_changelogs_to_recovery
 8. ``AppConsumer.ack`` (consumer.py): a record handed on before the last rebalance is done, not committable.
    Upstream  Faust ``Consumer.ack`` counts it, so its offset may be committed though its partition was rewound.
    Why       it is read again after the rewind; a commit past it could skip what lies below.
    Goes when Faust checks the generation when it acknowledges.
    Guards    upstream::test_faust_counts_the_ack_of_a_record_from_before_a_rebalance
              transport::test_a_record_from_before_a_rebalance_is_done_but_not_committable_when_acked
 9. ``AppConsumerThread._highwaters`` (consumer.py): partitions' ends from a fetch (a workaround of the broker).
    Upstream  Faust asks aiokafka's ``end_offsets`` (ListOffsets "latest"), which Tansu 0.6 answers with the
              newest batch's start plus one.
    Why       changelog recovery would end early; only tables need it (a Tansu named in bootstrap_servers).
    Goes when Tansu answers ListOffsets with the high watermark.
    Guards    broker_offsets::test_the_broker_answers_latest_with_the_newest_batch_start_plus_one_not_the_high_watermark
10. ``StackwatchApp._new_transport`` (app.py): the app's transport is ``AppTransport``.
    Upstream  Faust picks the transport class by the broker URL's scheme, with no setting to give one.
    Goes when Faust takes transport classes in its settings.
    Guards    upstream::test_every_private_method_the_adapter_overrides_is_still_there
11. ``StackwatchWorker._stop_on_signal`` (worker.py): ``before_stop`` (the drain, then the backstop is armed) runs
    between the signal and the stop. ``on_setup_root_logger`` is Faust's documented hook, not a workaround.
    Upstream  mode ``Worker._stop_on_signal`` stops every service at once, with no hook before.
    Why       the connectors must halt and the store catch up before the agents and producer go away.
    Goes when mode offers a hook that runs before the services stop on a signal.
    Guards    upstream::test_mode_runs_stop_on_signal_on_sigterm_before_anything_stops
              restarts::test_a_sigterm_during_a_backlog_loses_nothing
    ``_on_sigint`` and ``_on_sigterm`` count the stop signals (``stop_signals``) before mode handles them: mode acts
    on the first and drops the rest (``Worker._schedule_shutdown``), so an operator's SIGTERM that lands while the
    broker recycle's own SIGTERM is stopping the worker would be lost, and the process would start again. With the
    count, run.py stops instead of restarting.
    Guards    upstream::test_every_private_method_the_adapter_overrides_is_still_there
              recycle::test_a_sigterm_during_a_recycle_stops_the_service_instead_of_restarting_it
12. The backstop (``stackwatch/pipeline/process/backstop.py``, not here: it is process control): ``os._exit(70)``
    45 s after the drain, naming every task and thread.
    Upstream  mode ``Service.stop`` awaits each child's stop (shielded) with no overall bound.
    Why       a stop that still hangs after rows 4 and 5 is a bug; a supervisor must see it, not wait for ever.
    Goes when never: it is a guard, and it has not fired in the stop and fault tests.
    Guards    stop::test_the_backstop_exits_non_zero_naming_every_pending_task_and_cleans_up_first
    All rows  upstream::test_the_installed_versions_are_those_the_workarounds_were_written_for
              upstream::test_the_private_parts_the_adapter_and_its_tests_use_are_still_there

No workaround became moot under the durability design (a source's checkpoint follows the store; the rules'
state is rebuilt from the store): rows 1-8 and 10-12 serve both modes, and row 9 the tables a real or external
broker keeps. In the embedded mode a record Faust skipped would not be lost for good (its source's checkpoint
stays behind it), but it would be read again only at the next restart.
"""

from stackwatch.pipeline.kafka.adapter.app import DEFAULT_RESEND_AFTER, StackwatchApp
from stackwatch.pipeline.kafka.adapter.producer import ResendingProducer, TopicKeepingProducer
from stackwatch.pipeline.kafka.adapter.stop import DEFAULT_STOP_WAIT, StopClock
from stackwatch.pipeline.kafka.adapter.worker import StackwatchWorker

__all__ = [
    "DEFAULT_RESEND_AFTER",
    "DEFAULT_STOP_WAIT",
    "ResendingProducer",
    "StackwatchApp",
    "StackwatchWorker",
    "StopClock",
    "TopicKeepingProducer",
]
