"""Keeping the embedded broker's memory bounded: recycle the service in place when the broker outgrows its cap.

The embedded broker (Tansu 0.6, memory engine) keeps every record it was ever sent: it implements neither
retention (``retention.ms`` and ``retention.bytes`` are accepted and never applied) nor DeleteRecords (a
``todo!()`` in its storage layer), so nothing can trim it while it runs. Nothing in it is needed either: with the
embedded broker DuckDB is the only durable state, sources re-read what the store does not hold, and the rules
rebuild their state from the store. So when the broker holds more than ``kafka.embedded_memory_limit``, the
service stops gracefully (draining what was read into the store) and executes itself again in the same process:
same PID, same command line, a fresh broker::

    recycler = Recycler(broker.pid, limit=512 * 2**20)
    recycler.start()              # checks the broker's RSS every CHECK_EVERY seconds; SIGTERM to itself when over
    ...                           # the worker stops as on any SIGTERM
    if recycler.requested:
        restart_in_place()        # never returns
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

__all__ = ["CHECK_EVERY", "Recycler", "resident_bytes", "restart_in_place"]

log = logging.getLogger(__name__)

CHECK_EVERY = 10.0
"""Seconds between two looks at the broker's resident memory."""


def resident_bytes(pid: int) -> int | None:
    """The resident memory (VmRSS) of process ``pid``, or None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Recycler:
    """Watches the broker's memory on a daemon thread; over ``limit`` bytes, asks this process to stop (SIGTERM)
    and remembers that the stop is a recycle."""

    def __init__(self, broker_pid: int, limit: int, *, every: float = CHECK_EVERY) -> None:
        self._broker_pid = broker_pid
        self._limit = limit
        self._every = every
        self._done = threading.Event()
        self.requested = False

    def start(self) -> None:
        threading.Thread(target=self._watch, name="broker-recycler", daemon=True).start()

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(self._every):
            used = resident_bytes(self._broker_pid)
            if used is None or used <= self._limit:
                continue
            self.requested = True
            log.warning(
                "the embedded broker holds %.0f MB, over kafka.embedded_memory_limit (%.0f MB), and it cannot drop "
                "records: restarting the service in place with a fresh broker (what was read is stored first or "
                "read again; the rules rebuild their state from the store)",
                used / 2**20,
                self._limit / 2**20,
            )
            os.kill(os.getpid(), signal.SIGTERM)
            return


def restart_in_place() -> NoReturn:
    """Execute this process's own command line again (same PID): after a graceful stop, a start from scratch."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606 (our own command line, no shell)
