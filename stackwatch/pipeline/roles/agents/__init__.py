"""The Faust agents of the worker role: classify (in batches) → tagged articles for the sink; the sink's
observations of what it stored → count per bucket and evaluate rules.

Every agent is at-least-once: a crash replays records since the last commit, and every stage is idempotent
(article ids are stable, indicator values are full values computed from id sets, alert ids derive from the
rule and the bucket). A record an agent cannot handle goes to the dead-letter topic with its reason.
One module per stage: classify.py, rules.py (bucket counts and rules).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta

import faust

from stackwatch.pipeline.roles.agents.classify import register_classify
from stackwatch.pipeline.roles.agents.common import AgentTopics, DeadLetters
from stackwatch.pipeline.roles.agents.recovery import Recovery
from stackwatch.pipeline.roles.agents.rules import register_rules
from stackwatch.signals.classifier import Classifier
from stackwatch.signals.rules import RuleEngine

__all__ = ["AgentTopics", "DeadLetters", "register_agents"]


def register_agents(
    app: faust.App,
    topics: AgentTopics,
    load_classifier: Callable[[], Classifier],
    rules: Callable[[], RuleEngine],
    *,
    batch_size: int,
    batch_timeout: float,
    stream_retention: timedelta,
    recovery: Recovery | None = None,
) -> Future[Classifier]:
    """Attach the worker role's agents to ``app``; returns the classifier's loading future. ``recovery``: keep the
    rules' state in memory and rebuild it from the store at start (the embedded broker keeps nothing)."""
    loading = register_classify(app, topics, load_classifier, batch_size=batch_size, batch_timeout=batch_timeout)
    register_rules(app, topics, rules, retention=stream_retention, recovery=recovery)
    return loading
