"""Builds the Faust app and the services of the roles one process runs.

    runtime = build_runtime(settings, roles={"ingest", "worker", "sink"}, servers=["127.0.0.1:9092"])
    faust.Worker(runtime.app, *runtime.services).execute_from_commandline()

Roles: ``ingest`` (connectors → raw topic), ``worker`` (the Faust agents; run N of them to spread partitions),
``sink`` (the single DuckDB writer and webhook delivery, and the watcher of the ``source_health`` rules).
``stackwatch up`` runs all three in one process.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from stackwatch.pipeline.kafka.adapter import StackwatchApp
from stackwatch.pipeline.kafka.topics import TopicNames
from stackwatch.pipeline.roles.agents import AgentTopics, register_agents
from stackwatch.pipeline.roles.agents.recovery import StoreRecovery
from stackwatch.pipeline.roles.agents.rules import build_engine
from stackwatch.pipeline.roles.classifiers import build_service_classifier
from stackwatch.pipeline.roles.delivery import grouping_from
from stackwatch.pipeline.roles.derivation import build_derivation
from stackwatch.pipeline.roles.digest_schedule import digest_service
from stackwatch.pipeline.roles.ingest import IngestService
from stackwatch.pipeline.roles.sink import SinkService
from stackwatch.pipeline.roles.source_health import source_health_service
from stackwatch.pipeline.runtime import ROLES, Runtime
from stackwatch.pipeline.web.app import register_web
from stackwatch.settings import Settings

__all__ = ["ROLES", "Runtime", "build_runtime"]


def build_runtime(
    settings: Settings,
    roles: Collection[str],
    servers: Sequence[str],
    *,
    web_port: int | None = None,
    embedded: bool = False,
) -> Runtime:
    """``embedded``: the broker keeps nothing across a restart (every role runs here), so the rules' state is
    rebuilt from the store at start instead of living in changelogged tables.

    When the sink runs in this process, a source's checkpoint waits until the store holds its articles (end to end);
    otherwise until the broker acknowledged them.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(sorted(unknown))} (known: {', '.join(ROLES)})")
    kafka = settings.kafka
    session = kafka.session_timeout
    # Only workers may join the agents' consumer group: a process without agents in it would be handed
    # partitions it never subscribed to. Other roles run their Faust app (for the web server) under their own id.
    faust_id = kafka.app_id if "worker" in roles else f"{kafka.app_id}-role-{'-'.join(sorted(roles))}"
    app = StackwatchApp(
        faust_id,
        resend_after=kafka.request_timeout,
        broker=[f"kafka://{server}" for server in servers],
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A few milliseconds of linger put a batch's tagged articles into a few produce requests, not one each.
        producer_linger=0.005,
        broker_session_timeout=session,
        broker_heartbeat_interval=max(1.0, session / 4),
        broker_rebalance_timeout=max(session, 6.0),
        broker_commit_every=500,
        broker_commit_interval=1.0,
        web_enabled=True,
        web_bind=settings.web.host,
        web_host=settings.web.host,
        web_port=settings.web.port if web_port is None else web_port,
        web_in_thread=False,
        datadir=str(settings.state.path / "faust"),
        table_cleanup_interval=timedelta(minutes=5).total_seconds(),
        worker_redirect_stdouts=False,
    )
    names = TopicNames(kafka.topic_prefix)
    runtime = Runtime(app=app, roles=frozenset(roles))
    if "sink" in roles:
        runtime.sink = SinkService(
            kafka,
            settings.storage,
            servers,
            derivation=build_derivation(settings.taxonomy(), settings.entities, settings.indicators),
            webhooks=settings.webhooks,
            grouping=grouping_from(settings.alerting),
            loop=app.loop,
        )
    if "worker" in roles:
        topics = AgentTopics(*(app.topic(name, key_type=bytes, value_type=bytes) for name in names.all()))
        runtime.rules = build_engine(settings.rules, settings.alerting, settings.indicators.baseline_params())
        classifier, taxonomy = settings.classifier, settings.taxonomy()
        runtime.classifier = register_agents(
            app,
            topics,
            lambda: build_service_classifier(classifier, taxonomy),
            runtime.current_rules,
            batch_size=settings.classifier.batch_size,
            batch_timeout=settings.classifier.batch_timeout,
            stream_retention=timedelta(seconds=settings.indicators.stream_retention),
            recovery=StoreRecovery(runtime.sink.store) if embedded and runtime.sink is not None else None,
        )
    if "ingest" in roles:
        confirm = runtime.sink.stored if runtime.sink is not None else None
        runtime.ingest = IngestService(kafka, settings.sources, settings.state, servers, confirm=confirm, loop=app.loop)
        runtime.services.append(runtime.ingest)
    if runtime.sink is not None:
        runtime.services.append(runtime.sink)
        runtime.health = source_health_service(settings, runtime.sink.store, servers, loop=app.loop)
        runtime.services.append(runtime.health)
        digests = digest_service(settings, runtime.sink.store, loop=app.loop)
        if digests is not None:
            runtime.services.append(digests)
    register_web(app, runtime, settings, servers)
    return runtime
