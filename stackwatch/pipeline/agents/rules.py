"""The rules agent: indicator updates → the rule engine → firing and resolved alerts.

Every update is repartitioned onto one key, so one partition (one worker) sees all of them in order: rules
that span dynamics (composite indices, quiet dynamics) need the whole stream, and the stream is small
(one update per article per dynamic and window). The engine's state (bucket history, ``for`` streaks,
cooldowns, firing/resolved) lives in the changelogged ``rule-state`` table, written only inside the per-event
loop, so a restarted worker picks up where the last one stopped and a replayed update fires nothing twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable

import faust

from stackwatch.pipeline.agents.common import AgentTopics, DeadLetters
from stackwatch.pipeline.codec import decode, encode
from stackwatch.settings import Settings
from stackwatch.signals.alerting import Route, route
from stackwatch.signals.messages import IndicatorUpdate, MessageError
from stackwatch.signals.rules import RuleEngine

__all__ = ["build_engine", "register_rules"]

RULES_KEY = b"rules"


def build_engine(settings: Settings) -> RuleEngine:
    """The engine for every rule the stream can evaluate, with label routes from ``alerting.routes``."""
    routes = [Route(item.match, tuple(item.webhooks)) for item in settings.alerting.routes]
    rules = [rule for rule in (item.to_rule() for item in settings.rules) if rule is not None]
    return RuleEngine(rules, router=lambda labels: route(labels, routes))


def _one_key(payload: bytes) -> bytes:
    return RULES_KEY


def register_rules(app: faust.App, topics: AgentTopics, engine: Callable[[], RuleEngine]) -> None:
    """``engine()`` gives the current engine: a reload swaps in new rules, and their state carries over by name."""
    dead = DeadLetters(topics.deadletter)
    state = app.Table("rule-state", default=None)

    @app.agent(topics.indicators, name="evaluate")
    async def evaluate(stream: AsyncIterable[bytes]) -> None:
        async for payload in stream.group_by(_one_key, name="rules-input"):  # type: ignore[attr-defined]
            try:
                update = decode(IndicatorUpdate, payload)
            except MessageError as error:
                await dead.send("evaluate", f"not an indicator update: {error}", payload, "indicators")
                continue
            for alert in engine().apply(state, update):
                await topics.alerts.send(key=alert.id.encode(), value=encode(alert))
