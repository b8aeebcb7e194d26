"""Faust's worker, with a step between the stop signal and the stop, and our own log setup.

    worker = StackwatchWorker(app, *services, before_stop=drain, configure_logging=setup, loglevel="INFO")
    worker.execute_from_commandline()

mode (0.7.1) runs ``Worker._stop_on_signal`` on SIGINT and SIGTERM (``Worker._schedule_shutdown``) and stops every
service there at once: there is no public hook between the signal and the stop, where the service must halt its
connectors and wait for the store before Faust's agents and producer go away. The worker overrides that private
method; ``before_stop`` runs first, and its failure never prevents the stop. It can go when mode offers a hook that
runs before the services stop on a signal. Row 11 of the adapter's table; guarded by
upstream::test_mode_runs_stop_on_signal_on_sigterm_before_anything_stops (its signature by
upstream::test_every_private_method_the_adapter_overrides_is_still_there) and by the drain in
restarts::test_a_sigterm_during_a_backlog_loses_nothing.

Faust's worker sets up the root logger with mode's handlers and format and then calls its documented hook
``on_setup_root_logger``; ``configure_logging`` runs there (no workaround: the one place after mode's setup).
``on_started`` runs from the worker's documented signal ``on_startup_finished``, once every service has started.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faust.worker import Worker

__all__ = ["StackwatchWorker"]

log = logging.getLogger("stackwatch")


class StackwatchWorker(Worker):
    """Faust's worker; ``before_stop`` is awaited when a signal asks it to stop, before anything stops,
    ``configure_logging`` is called with the root logger once mode has set it up, and ``on_started`` once every
    service has started (module doc)."""

    def __init__(
        self,
        *args: Any,
        before_stop: Callable[[], Awaitable[None]] | None = None,
        configure_logging: Callable[[logging.Logger], None] | None = None,
        on_started: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        self._before_stop = before_stop
        self._configure_logging = configure_logging
        self._on_started = on_started
        self.stop_signals = 0
        """SIGINT and SIGTERM received. mode acts on the first and ignores the rest (``_schedule_shutdown``), so
        this is how the process knows that more than one stop was asked for."""
        super().__init__(*args, **kwargs)

    def _on_sigint(self) -> None:
        self.stop_signals += 1
        super()._on_sigint()

    def _on_sigterm(self) -> None:
        self.stop_signals += 1
        super()._on_sigterm()

    async def _stop_on_signal(self, signal: Any) -> None:
        if self._before_stop is not None:
            try:
                await self._before_stop()
            except Exception:  # what runs before the stop must never prevent the stop itself
                log.exception("stopping: the step before the stop failed; stopping anyway")
        await super()._stop_on_signal(signal)

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        if self._on_started is not None:
            self._on_started()

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        if self._configure_logging is not None:
            self._configure_logging(logger)
