"""What every agent shares: its topics and the dead-letter path."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from stackwatch.pipeline.codec import encode
from stackwatch.signals.messages import DeadLetter

__all__ = ["AgentTopics", "DeadLetters"]

log = logging.getLogger("stackwatch.pipeline.agents")


@dataclass(frozen=True)
class AgentTopics:
    """The Faust topic objects the agents read and write."""

    raw: Any
    tagged: Any
    hits: Any
    indicators: Any
    alerts: Any
    deadletter: Any


@dataclass(frozen=True)
class DeadLetters:
    """Sends records an agent cannot handle to the dead-letter topic, with the reason."""

    topic: Any

    async def send(self, stage: str, reason: str, payload: bytes | None, origin: str) -> None:
        log.warning("%s: dead-lettered %s: %s", stage, origin, reason)
        letter = DeadLetter(
            stage=stage, reason=reason, payload=(payload or b"")[:4000].decode("utf-8", "replace"), origin=origin
        )
        await self.topic.send(value=encode(letter))
