"""The service's read-only SQL front (``POST /api/sql``): sandboxed queries on a fresh snapshot of the store.

User SQL never runs on the writer's connection nor on its thread. Each query runs in a sandboxed process of
its own (:func:`stackwatch.storage.query.run_query`) on the snapshot file the sink publishes
(``storage.snapshot_path``), so it reads the store as of that snapshot. The front keeps the snapshot fresh: when
the store has been written since the snapshot and the snapshot is older than ``sql.max_staleness``, a query
first asks the store thread for a new one, which also makes a freshly started service queryable at once. A
snapshot copies the whole store on the writer's thread, so when copies are slow they are made less often: at
most one per ten times the last copy's duration.

At most ``sql.max_concurrent`` queries run at once; one more is refused with :class:`QueryBusy`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stackwatch.errors import QueryBusy, StoreError
from stackwatch.pipeline.roles.storethread import StoreThread
from stackwatch.settings import Settings
from stackwatch.settings.sql import SqlSettings
from stackwatch.storage.maintenance import snapshot
from stackwatch.storage.query import QueryAnswer, QueryLimits, run_query

__all__ = ["COPY_SHARE", "SqlFront", "sql_limits", "written_at"]

log = logging.getLogger(__name__)

COPY_SHARE = 10
"""A snapshot made for queries waits at least this many times the last copy's duration after the one before."""


def sql_limits(settings: SqlSettings) -> QueryLimits:
    """The limits of one query, from the ``sql:`` section."""
    return QueryLimits(time_limit=settings.time_limit, max_rows=settings.max_rows, memory_limit=settings.memory_limit)


def written_at(store: Path) -> int:
    """When the store was last written (ns): a commit appends to its WAL, a checkpoint rewrites the file."""
    stamps = [0]
    for path in (store, store.with_name(store.name + ".wal")):
        try:
            stamps.append(path.stat().st_mtime_ns)
        except FileNotFoundError:
            continue
    return max(stamps)


class SqlFront:
    """``await front.answer(thread, sql)``: one query, sandboxed, on a snapshot no staler than the settings allow."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings.sql
        self._limits = sql_limits(settings.sql)
        self.snapshot_path = settings.storage.snapshot_file()
        self._executor = ThreadPoolExecutor(max_workers=settings.sql.max_concurrent, thread_name_prefix="sql")
        self._running = 0
        self._refreshing: asyncio.Lock | None = None
        self._copy_seconds = 0.0

    @property
    def running(self) -> int:
        """Queries running now (each in its own process)."""
        return self._running

    async def answer(self, thread: StoreThread, sql: str) -> QueryAnswer:
        """Run ``sql``; raises QueryRefused, QueryStopped, QueryFailed, QueryBusy or StoreError."""
        if self._running >= self._settings.max_concurrent:
            raise QueryBusy(
                f"{self._running} queries are running, the most allowed (sql.max_concurrent); try again shortly"
            )
        self._running += 1
        loop = asyncio.get_running_loop()
        try:
            path = await self._fresh(thread)
            future = loop.run_in_executor(self._executor, run_query, path, sql, self._limits)
        except BaseException:
            self._running -= 1
            raise
        # The slot is free when the query process has ended, not when a client stops waiting for it.
        future.add_done_callback(lambda _: self._release())
        return await asyncio.shield(future)

    def _release(self) -> None:
        self._running -= 1

    async def _fresh(self, thread: StoreThread) -> Path:
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:  # queries arriving during a copy wait for it rather than start another
            if not self._stale(thread.store.path):
                return self.snapshot_path
            started = time.monotonic()
            try:
                await thread.call(snapshot, thread.store, self.snapshot_path)
            except StoreError as error:
                if not self.snapshot_path.exists():
                    raise StoreError(f"no snapshot to query yet, and none can be written: {error}") from error
                log.warning("sql: querying the last snapshot: cannot write a fresh one: %s", error)
            else:
                self._copy_seconds = time.monotonic() - started
        return self.snapshot_path

    def _stale(self, store: Path) -> bool:
        try:
            copied = self.snapshot_path.stat()
        except FileNotFoundError:
            return True
        if written_at(store) < copied.st_mtime_ns:
            return False  # nothing written since the copy
        age = time.time() - copied.st_mtime
        return age >= max(self._settings.max_staleness, COPY_SHARE * self._copy_seconds)
