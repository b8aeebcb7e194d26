"""When a failed webhook notification is tried again: the schedule, its jitter, and the receiver's Retry-After.

retry_delay(1)                        # about 5 s (± 10 %) after the first failed attempt
retry_delay(2, retry_after=900.0)     # 900 s: a Retry-After longer than the schedule wins
retry_delay(len(RETRY_SCHEDULE) + 1)  # None: that was the last try
"""

from __future__ import annotations

import random

from stackwatch.connectors.http import parse_retry_after

__all__ = ["JITTER", "MAX_DELAY", "RETRY_SCHEDULE", "retry_after_seconds", "retry_delay"]

RETRY_SCHEDULE: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)
"""Seconds to wait after attempt 1, 2, ...; the attempt after the last wait is the last try."""
MAX_DELAY = 36000.0
"""No wait (schedule, jitter or Retry-After) is longer than this."""
JITTER = 0.1


def retry_delay(attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float | None:
    """Seconds before the next try after failed ``attempt`` (1-based); None once the schedule is used up.

    >>> retry_delay(1, rng=random.Random(1)) is not None and 4.5 <= retry_delay(1) <= 5.5
    True
    """
    if attempt > len(RETRY_SCHEDULE):
        return None
    delay = RETRY_SCHEDULE[attempt - 1] * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_DELAY)


def retry_after_seconds(value: str | None) -> float | None:
    """A receiver's Retry-After as seconds within 0 and :data:`MAX_DELAY`; None when missing or unreadable."""
    return parse_retry_after(value, MAX_DELAY)
