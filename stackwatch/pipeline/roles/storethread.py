"""DuckDB calls block: run every call of one Store on one dedicated thread, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from stackwatch.storage.store import Store

__all__ = ["StoreThread"]

P = ParamSpec("P")
R = TypeVar("R")


class StoreThread:
    """``await thread.call(store.write, batch)``: serialised on one thread, so the Store is never shared."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb")

    async def call(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

    async def close(self) -> None:
        await self.call(self.store.close)
        self._executor.shutdown(wait=True)
