"""The rules agent: indicator updates → rules → alerts (with ids stable across replays)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence

import faust

from stackwatch.pipeline.agents.common import AgentTopics, DeadLetters
from stackwatch.pipeline.codec import decode, encode
from stackwatch.signals.messages import IndicatorUpdate, MessageError
from stackwatch.signals.rules import ThresholdRule

__all__ = ["register_rules"]


def register_rules(app: faust.App, topics: AgentTopics, rules: Sequence[ThresholdRule]) -> None:
    dead = DeadLetters(topics.deadletter)

    @app.agent(topics.indicators, name="evaluate")
    async def evaluate(stream: AsyncIterable[bytes]) -> None:
        async for payload in stream:
            try:
                update = decode(IndicatorUpdate, payload)
            except MessageError as error:
                await dead.send("evaluate", f"not an indicator update: {error}", payload, "indicators")
                continue
            for rule in rules:
                alert = rule.evaluate(update)
                if alert is not None:
                    await topics.alerts.send(key=alert.id.encode(), value=encode(alert))
