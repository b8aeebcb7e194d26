"""Baselines of a bucket series: EWMA mean and deviation, the z-score of each bucket, momentum.

Every value at bucket ``t`` depends only on buckets up to ``t`` (causal), and each point carries the running state
after its bucket, so a series resumed from the state before the first bucket a late article touched gives the same
numbers, bit for bit, as the series computed from scratch::

    >>> points = baselines([2, 2, 2, 9], BaselineParams(alpha=0.5))
    >>> points[-1].mean, round(points[-1].zscore, 1)
    (2.0, 7.0)
    >>> resumed = baselines([2, 9], BaselineParams(alpha=0.5), state=points[1].state)
    >>> resumed == points[2:]
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BaselineParams", "BaselinePoint", "BaselineState", "baselines"]


@dataclass(frozen=True, slots=True)
class BaselineParams:
    """``alpha``: EWMA weight of the newest bucket; ``fast``/``slow``: momentum's two EWMA spans (in buckets);
    ``min_deviation``: the floor of the deviation a z-score divides by, so a quiet series does not explode."""

    alpha: float = 0.1
    fast: int = 3
    slow: int = 24
    min_deviation: float = 1.0


@dataclass(frozen=True, slots=True)
class BaselineState:
    """What the series has accumulated up to and including a bucket: the EWMA mean and variance, and momentum's
    fast and slow EWMAs. The next bucket's point follows from it and that bucket's value alone."""

    mean: float
    variance: float
    fast: float
    slow: float


@dataclass(frozen=True, slots=True)
class BaselinePoint:
    """One bucket's signals. ``mean`` and ``deviation`` are the baseline *before* the bucket (what it is
    compared against); ``zscore`` = (value − mean) / max(deviation, min_deviation); ``momentum`` = fast EWMA −
    slow EWMA including the bucket (positive: rising); ``state``: the running state after the bucket."""

    mean: float
    deviation: float
    zscore: float
    momentum: float
    state: BaselineState


def baselines(
    values: Sequence[float], params: BaselineParams = BaselineParams(), state: BaselineState | None = None
) -> list[BaselinePoint]:
    """Signals for each value of a dense series (one value per bucket, zeros included, oldest first); ``state``:
    the state after the bucket before ``values[0]`` (None: the series starts at ``values[0]``)."""
    points: list[BaselinePoint] = []
    fast_alpha = 2.0 / (params.fast + 1)
    slow_alpha = 2.0 / (params.slow + 1)
    for value in values:
        if state is None:
            state = BaselineState(value, 0.0, value, value)
            points.append(BaselinePoint(value, 0.0, 0.0, 0.0, state))
            continue
        before, variance = state.mean, state.variance
        deviation = math.sqrt(variance)
        zscore = (value - before) / max(deviation, params.min_deviation)
        fast = state.fast + fast_alpha * (value - state.fast)
        slow = state.slow + slow_alpha * (value - state.slow)
        delta = value - before
        state = BaselineState(
            before + params.alpha * delta,
            (1 - params.alpha) * (variance + params.alpha * delta * delta),
            fast,
            slow,
        )
        points.append(BaselinePoint(before, deviation, zscore, fast - slow, state))
    return points
