"""Alert rules: pure functions from an indicator update to an alert (or none).

>>> rule = ThresholdRule("any", "decoupling", "article_count", "1h", ">=", 1, "warning", ("ops",))
>>> alert = rule.evaluate(update)       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable
from dataclasses import dataclass

from stackwatch.signals.messages import Alert, IndicatorUpdate

__all__ = ["OPERATORS", "ThresholdRule", "alert_id"]

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}


def alert_id(rule: str, *parts: str) -> str:
    """The same rule tripped by the same thing always yields the same id (replays dedupe downstream)."""
    return "alert_" + hashlib.sha256("|".join((rule, *parts)).encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Fire once per bucket when ``indicator`` of ``dynamic`` in a ``window`` bucket satisfies ``op value``."""

    name: str
    dynamic: str
    indicator: str
    window: str
    op: str
    value: float
    severity: str
    webhooks: tuple[str, ...]

    def evaluate(self, update: IndicatorUpdate) -> Alert | None:
        if (update.dynamic, update.indicator, update.window) != (self.dynamic, self.indicator, self.window):
            return None
        if not OPERATORS[self.op](update.value, self.value):
            return None
        bucket = update.bucket_start.isoformat()
        return Alert(
            id=alert_id(self.name, self.dynamic, self.window, bucket),
            rule=self.name,
            severity=self.severity,
            dynamic=self.dynamic,
            indicator=self.indicator,
            window=self.window,
            bucket_start=update.bucket_start,
            value=update.value,
            threshold=self.value,
            message=(
                f"{self.dynamic} {self.indicator} {update.value:g} {self.op} {self.value:g} "
                f"in the {self.window} bucket starting {bucket}"
            ),
            webhooks=self.webhooks,
        )
