"""An alert's ``message``: one sentence a person reads, naming what moved, in which scope, against what bound.

>>> from datetime import UTC, datetime
>>> rule = Rule("capex-share", Threshold("capex", "share", threshold=0.3))
>>> sentence(rule, datetime(2026, 12, 2, 10, tzinfo=UTC), 0.341, "firing")
'capex share of coverage was 34.1 % in the hour from 2026-12-02 10:00 UTC, at or above 30 %'
>>> rule = Rule("nv", Trend("decoupling", entity="NVIDIA", window="1d", threshold=0.5))
>>> sentence(rule, datetime(2026, 12, 2, tzinfo=UTC), 0.2, "resolved")[:60]
'Resolved: decoupling articles naming NVIDIA momentum of the '
"""

from __future__ import annotations

import math
from datetime import datetime

from stackwatch.signals.conditions import Composite, Cooccurrence, Rule, Spike, Threshold, Trend

__all__ = ["INDICATOR_PHRASES", "sentence"]

INDICATOR_PHRASES = {
    "article_count": "article count",
    "story_count": "distinct stories",
    "source_count": "distinct sources",
    "score_sum": "summed classifier score",
    "share": "share of coverage",
    "novelty": "novelty (summed)",
    "ewma_mean": "EWMA baseline of the article count",
    "ewma_dev": "EWMA deviation of the article count",
    "zscore": "z-score of the article count",
    "momentum": "momentum of the article count",
}
"""How a message names each of the store's indicators."""

_RELATIONS = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below", "==": "equal to"}


def _number(value: float, percent: bool) -> str:
    if math.isinf(value) or math.isnan(value):
        return "n/a"
    return f"{value * 100:.3g} %" if percent else f"{value:.3g}"


def _what(rule: Rule) -> tuple[str, str]:
    """(the subject, the indicator's phrase) of a rule's sentence."""
    condition = rule.condition
    match condition:
        case Threshold():
            return condition.scope.describe(), INDICATOR_PHRASES[condition.indicator]
        case Spike():
            return condition.scope.describe(), f"z-score of the {INDICATOR_PHRASES[condition.measure]}"
        case Trend():
            return condition.scope.describe(), f"momentum of the {INDICATOR_PHRASES[condition.measure]}"
        case Composite():
            return f"index {condition.name}", f"(weighted {INDICATOR_PHRASES[condition.indicator]})"
        case Cooccurrence():
            return condition.scope.describe(), "count of distinct stories" if condition.counts_stories else "count"
    return rule.name, condition.indicator


def _when(window: str, bucket: datetime) -> str:
    if window == "1d":
        return f"on {bucket:%Y-%m-%d} (UTC)"
    return f"in the hour from {bucket:%Y-%m-%d %H:%M} UTC"


def sentence(rule: Rule, bucket: datetime, value: float | None, status: str) -> str:
    """The message of ``rule``'s alert at ``bucket`` (``status``: firing or resolved)."""
    condition = rule.condition
    subject, phrase = _what(rule)
    percent = isinstance(condition, Threshold | Composite) and condition.indicator == "share"
    shown = "n/a" if value is None else _number(value, percent)
    bound = f"{_RELATIONS[condition.op]} {_number(condition.threshold, percent)}"
    said = f"{subject} {phrase} was {shown} {_when(condition.window, bucket)}"
    return f"Resolved: {said}, no longer {bound}" if status == "resolved" else f"{said}, {bound}"
