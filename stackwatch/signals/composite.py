"""Composite indices: weighted sums of dynamics' indicator values, defined in configuration.

>>> moat = CompositeIndex("moat_pressure", {"decoupling": 1, "edge": 1, "exclusivity": -1, "capex": -1})
>>> moat.value({"decoupling": 0.25, "edge": 0.5, "capex": 0.25})
0.5
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CompositeIndex"]


@dataclass(frozen=True, slots=True)
class CompositeIndex:
    """``value = Σ weight × indicator(dynamic)`` over one bucket; a dynamic absent from the bucket counts 0."""

    name: str
    weights: Mapping[str, float]
    indicator: str = "share"

    def value(self, values: Mapping[str, float]) -> float:
        return float(sum(weight * values.get(dynamic, 0.0) for dynamic, weight in self.weights.items()))
