"""Consumer lag: how many records each consumer group has yet to commit, per topic.

    lag = await consumer_lag(["127.0.0.1:9092"], {"stackwatch": ["stackwatch.articles.raw"]})
    # {"stackwatch": {"stackwatch.articles.raw": 0}}

Committed offsets are read with a group consumer that never joins the group (``committed()``), which the
embedded broker answers; the admin client's OffsetFetch version is one it does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from stackwatch.errors import BrokerError

__all__ = ["consumer_lag", "total_lag"]


async def consumer_lag(servers: Sequence[str], groups: Mapping[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    """Records not yet committed, per group and topic (a partition never committed counts from offset 0)."""
    result: dict[str, dict[str, int]] = {}
    for group, topics in groups.items():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=list(servers), group_id=group, enable_auto_commit=False, request_timeout_ms=10_000
        )
        try:
            await consumer.start()
            existing = await consumer.topics()
            partitions = [
                TopicPartition(topic, partition)
                for topic in topics
                if topic in existing
                for partition in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            ends = await consumer.end_offsets(partitions) if partitions else {}
            per_topic = dict.fromkeys(topics, 0)
            for tp, end in ends.items():
                committed = await consumer.committed(tp)
                per_topic[tp.topic] += max(0, end - (committed or 0))
            result[group] = per_topic
        except KafkaError as error:
            raise BrokerError(f"cannot read the lag of group {group} from {','.join(servers)}: {error}") from error
        finally:
            await consumer.stop()
    return result


def total_lag(lag: Mapping[str, Mapping[str, int]]) -> int:
    return sum(count for topics in lag.values() for count in topics.values())
