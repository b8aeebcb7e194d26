"""Per-host politeness: at most ``concurrency`` requests in flight to a host, and a minimum gap between them.

    limiter = HostLimiter(concurrency=2, min_gap=1.0)
    async with limiter.slot("www.sec.gov"):
        ...  # one request

Sources that share a host (several EDGAR CIKs, several HN queries) share its budget. ``host=None`` (files,
the demo) passes straight through. The clock and sleep are parameters so tests need no wall-clock waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

__all__ = ["HostLimiter"]


class HostLimiter:
    """Bounds concurrency and spaces out request starts per host."""

    def __init__(
        self,
        concurrency: int = 2,
        min_gap: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.min_gap = max(0.0, min_gap)
        self._clock = clock
        self._sleep = sleep
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._turns: dict[str, asyncio.Lock] = {}
        self._next_start: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, host: str | None) -> AsyncIterator[None]:
        """Wait for a free slot and for the host's gap, then hold the slot for the duration of the block."""
        if not host:
            yield
            return
        host = host.lower()
        slots = self._slots.setdefault(host, asyncio.Semaphore(self.concurrency))
        turn = self._turns.setdefault(host, asyncio.Lock())
        async with slots:
            async with turn:  # request starts are serialised per host so the gap holds between all of them
                wait = self._next_start.get(host, 0.0) - self._clock()
                if wait > 0:
                    await self._sleep(wait)
                self._next_start[host] = self._clock() + self.min_gap
            yield
