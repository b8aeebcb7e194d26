"""Baselines of a bucket series: EWMA mean and deviation, the z-score of each bucket, momentum.

Every value at bucket ``t`` depends only on buckets up to ``t`` (causal), so recomputing a series from the first
bucket a late article touched gives the same numbers as computing it from scratch::

    >>> points = baselines([2, 2, 2, 9], BaselineParams(alpha=0.5))
    >>> points[-1].mean, round(points[-1].zscore, 1)
    (2.0, 7.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BaselineParams", "BaselinePoint", "baselines"]


@dataclass(frozen=True, slots=True)
class BaselineParams:
    """``alpha``: EWMA weight of the newest bucket; ``fast``/``slow``: momentum's two EWMA spans (in buckets);
    ``min_deviation``: the floor of the deviation a z-score divides by, so a quiet series does not explode."""

    alpha: float = 0.1
    fast: int = 3
    slow: int = 24
    min_deviation: float = 1.0


@dataclass(frozen=True, slots=True)
class BaselinePoint:
    """One bucket's signals. ``mean`` and ``deviation`` are the baseline *before* the bucket (what it is
    compared against); ``zscore`` = (value − mean) / max(deviation, min_deviation); ``momentum`` = fast EWMA −
    slow EWMA including the bucket (positive: rising)."""

    mean: float
    deviation: float
    zscore: float
    momentum: float


def baselines(values: Sequence[float], params: BaselineParams = BaselineParams()) -> list[BaselinePoint]:
    """Signals for each value of a dense series (one value per bucket, zeros included, oldest first)."""
    points: list[BaselinePoint] = []
    fast_alpha = 2.0 / (params.fast + 1)
    slow_alpha = 2.0 / (params.slow + 1)
    mean = variance = fast = slow = 0.0
    for index, value in enumerate(values):
        if index == 0:
            mean, variance, fast, slow = value, 0.0, value, value
            points.append(BaselinePoint(value, 0.0, 0.0, 0.0))
            continue
        deviation = math.sqrt(variance)
        zscore = (value - mean) / max(deviation, params.min_deviation)
        fast += fast_alpha * (value - fast)
        slow += slow_alpha * (value - slow)
        points.append(BaselinePoint(mean, deviation, zscore, fast - slow))
        delta = value - mean
        mean += params.alpha * delta
        variance = (1 - params.alpha) * (variance + params.alpha * delta * delta)
    return points
