"""The stop's clock: when the app began to stop, and how long what the stop waits on may take.

    clock = StopClock(wait=15.0)
    clock.start()                 # App.on_stop: the first thing the stop does
    clock.deadline()              # time.monotonic() + 15 at the start; None while running
    clock.overdue()               # past the deadline: give up waiting, commit nothing more

Faust (0.15.3) and mode (0.7.1) wait without a bound in three places while an app stops: for the agents to
acknowledge every record they took (``Consumer.wait_empty``, when the app stops, when the consumer stops and at a
rebalance), and for the broker to take what the producer holds (``Producer.flush``, before each offset commit in
``Consumer._commit_offsets`` and in ``App.on_stop``); mode's ``Service.stop`` awaits each child without a timeout.
The app's consumer and producer (:mod:`.consumer`, :mod:`.producer`) read this clock and stop waiting at its deadline;
from then on nothing more is committed, so what was not done is read again after the restart, as after a crash.
"""

from __future__ import annotations

import time

__all__ = ["CHECK_EVERY", "DEFAULT_STOP_WAIT", "StopClock"]

DEFAULT_STOP_WAIT = 15.0
"""Seconds a stop waits for the agents' records in flight and for the broker (``StackwatchApp.stop_wait``)."""

CHECK_EVERY = 1.0
"""Seconds between looks at the clock while a wait that began before the stop goes on."""


class StopClock:
    """The stop's start and deadline; started once, never reset (an app stops once)."""

    def __init__(self, wait: float = DEFAULT_STOP_WAIT) -> None:
        self.wait = wait
        self._since: float | None = None

    def start(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    def deadline(self) -> float | None:
        """When (``time.monotonic()``) the stop stops waiting for records and the broker; None while running."""
        return None if self._since is None else self._since + self.wait

    def overdue(self) -> bool:
        deadline = self.deadline()
        return deadline is not None and time.monotonic() >= deadline
