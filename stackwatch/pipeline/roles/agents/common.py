"""What every agent shares: its topics, the dead-letter path, and buffered table writes."""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from faust import TopicT

from stackwatch.pipeline.kafka.codec import encode
from stackwatch.signals.messages import DeadLetter

__all__ = ["RULES_KEY", "AgentTopics", "BufferedTable", "DeadLetters"]

RULES_KEY = b"rules"
"""The one key of the observations topic: one partition (one worker) sees every observation in order."""

log = logging.getLogger("stackwatch.pipeline.roles.agents")


@dataclass(frozen=True)
class AgentTopics:
    """The Faust topic objects the agents read and write."""

    raw: TopicT
    tagged: TopicT
    observations: TopicT
    indicators: TopicT
    alerts: TopicT
    deadletter: TopicT


@dataclass(frozen=True)
class DeadLetters:
    """Sends records an agent cannot handle to the dead-letter topic, with the reason."""

    topic: TopicT

    async def send(self, stage: str, reason: str, payload: bytes | None, origin: str) -> None:
        log.warning("%s: dead-lettered %s: %s", stage, origin, reason)
        letter = DeadLetter(
            stage=stage, reason=reason, payload=(payload or b"")[:4000].decode("utf-8", "replace"), origin=origin
        )
        await self.topic.send(value=encode(letter))


class _Deleted(enum.Enum):
    DELETED = enum.auto()


_DELETED: Literal[_Deleted.DELETED] = _Deleted.DELETED
"""A buffered deletion."""

V = TypeVar("V")


class BufferedTable(MutableMapping[str, V]):
    """A view of a Faust table that holds writes until :meth:`flush`: each key then reaches the changelog once.

    The rule engine rewrites the same few keys many times per batch; unbuffered, every rewrite would be a
    changelog record. Reads see the buffered writes. Flush inside the agent's event, as any table write.
    """

    def __init__(self, table: MutableMapping[str, V]) -> None:
        self._table = table
        self._writes: dict[str, V | Literal[_Deleted.DELETED]] = {}

    def __getitem__(self, key: str) -> V:
        if key in self._writes:
            value = self._writes[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        return self._table[key]

    def __setitem__(self, key: str, value: V) -> None:
        self._writes[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._writes[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for key, value in self._writes.items():
            seen.add(key)
            if value is not _DELETED:
                yield key
        yield from (key for key in self._table if key not in seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> None:
        for key, value in self._writes.items():
            if value is _DELETED:
                self._table.pop(key, None)
            else:
                self._table[key] = value
        self._writes.clear()
