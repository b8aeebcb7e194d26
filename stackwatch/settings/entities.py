"""``entities:`` and ``indicators:`` sections: the gazetteer, composite indices and baseline parameters.

entities:                       # the built-in gazetteer (docs/entities.md), with these entries replacing,
  - {name: Cerebras, aliases: [cerebras], exact: [WSE-3], kind: company}        # adding
  - {name: WSE-3, exact: [WSE-3], kind: chip_or_product, owner: Cerebras}
  - {name: Akamai, enabled: false}                                               # or dropping entries
indicators:
  composites:
    - {name: moat_pressure, weights: {decoupling: 1, edge: 1, exclusivity: -1, capex: -1}}
  ewma_alpha: 0.1
  stream_retention: 3d          # the stream keeps bucket membership this long after a bucket ends
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BeforeValidator, Field

from stackwatch.settings.base import Section, parse_duration
from stackwatch.signals.baselines import BaselineParams
from stackwatch.signals.composite import CompositeIndex
from stackwatch.signals.entities import DEFAULT_ENTITIES, Entity, Gazetteer, Kind

__all__ = ["CompositeSettings", "EntitySettings", "IndicatorSettings", "gazetteer_from"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]


class EntitySettings(Section):
    """One gazetteer entry: ``aliases`` match in any case, ``exact`` only as written (for "Meta", "TPU"); ``kind``
    one of :data:`~stackwatch.signals.entities.KINDS`; ``owner`` the entity a mention counts for too (a chip's
    maker); ``enabled: false`` drops the built-in entry of that name."""

    name: str = Field(min_length=1, max_length=80)
    aliases: list[Annotated[str, Field(min_length=2)]] = []
    exact: list[Annotated[str, Field(min_length=2)]] = []
    kind: Kind = "company"
    owner: str | None = Field(default=None, min_length=1, max_length=80)
    enabled: bool = True


class CompositeSettings(Section):
    """A composite index: ``Σ weight × indicator`` over the named dynamics, per bucket."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    weights: dict[str, float] = Field(min_length=1)
    indicator: str = Field(default="share", pattern=r"^(article_count|story_count|share|score_sum|novelty)$")

    def composite(self) -> CompositeIndex:
        return CompositeIndex(self.name, dict(self.weights), self.indicator)


class IndicatorSettings(Section):
    """How indicators are derived: composites, EWMA baselines, momentum spans, and the stream's memory."""

    composites: list[CompositeSettings] = []
    ewma_alpha: float = Field(default=0.1, gt=0, le=1)
    momentum_fast: int = Field(default=3, ge=1, le=1000)
    momentum_slow: int = Field(default=24, ge=2, le=10000)
    min_deviation: float = Field(default=1.0, gt=0)
    stream_retention: Seconds = 3 * 86400.0

    def baseline_params(self) -> BaselineParams:
        return BaselineParams(self.ewma_alpha, self.momentum_fast, self.momentum_slow, self.min_deviation)


def gazetteer_from(entries: Sequence[EntitySettings]) -> Gazetteer:
    """The built-in entities, with configured entries replacing same-named ones, adding new ones, and dropping
    those configured with ``enabled: false``."""
    configured = {
        entry.name: Entity(entry.name, tuple(entry.aliases), tuple(entry.exact), entry.kind, entry.owner)
        for entry in entries
    }
    dropped = {entry.name for entry in entries if not entry.enabled}
    merged = [configured.pop(entity.name, entity) for entity in DEFAULT_ENTITIES]
    return Gazetteer(entity for entity in [*merged, *configured.values()] if entity.name not in dropped)
