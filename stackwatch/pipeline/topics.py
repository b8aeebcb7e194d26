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
    def hits(self) -> str:
        return f"{self.prefix}.dynamic-hits"

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
        return (self.raw, self.tagged, self.hits, self.indicators, self.alerts, self.deadletter)
