"""Topic names, all under one configurable prefix so deployments (and tests) never collide."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TopicNames"]


@dataclass(frozen=True, slots=True)
class TopicNames:
    """``TopicNames("stackwatch").raw == "stackwatch.articles.raw"``."""

    prefix: str

    @property
    def raw(self) -> str:
        return f"{self.prefix}.articles.raw"

    @property
    def tagged(self) -> str:
        return f"{self.prefix}.articles.tagged"

    @property
    def observations(self) -> str:
        return f"{self.prefix}.observations"

    @property
    def indicators(self) -> str:
        return f"{self.prefix}.indicators"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    def all(self) -> tuple[str, ...]:
        return (self.raw, self.tagged, self.observations, self.indicators, self.alerts, self.deadletter)

    def consumer_groups(self, app_id: str) -> dict[str, list[str]]:
        """The consumer groups of a deployment (the workers', the sink's) and the topics each reads."""
        return {
            app_id: [self.raw, self.observations],
            f"{app_id}-sink": [self.tagged, self.indicators, self.alerts, self.deadletter],
        }
