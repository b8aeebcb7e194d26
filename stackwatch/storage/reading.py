"""Read the store without writing it, while the service runs: the file when it is free, else its snapshot.

    with open_for_reading(settings.storage.path, settings.storage.snapshot_file()) as source:
        history.indicator_history(source.store.connection, since, None)
        print(source.describe())    # "the snapshot data/stackwatch.snapshot.duckdb (42s old; ...)"

The running service holds the DuckDB file (one process may open a file that another writes) and publishes a
consistent, read-only copy of it every ``storage.snapshot_interval`` (:func:`~stackwatch.storage.maintenance.snapshot`,
replaced atomically, so a reader keeps the copy it opened). Both are opened read-only: nothing here writes either.
``export_to`` lets the connection write files under that one directory (Parquet export) and nowhere else; file
access is otherwise off and the configuration locked, as on every read-only store.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from stackwatch.errors import StoreError
from stackwatch.storage.derive import Derivation
from stackwatch.storage.sandbox import lock_down
from stackwatch.storage.store import DEFAULT_MEMORY_LIMIT, Store, held_by_another_process

__all__ = ["StoreSource", "age_text", "open_for_reading"]


@dataclass(frozen=True, slots=True)
class StoreSource:
    """A store opened read-only, and which file it is: ``snapshot_age`` (seconds) is None for the store file."""

    store: Store
    path: Path
    snapshot_age: float | None
    held: str = ""
    """Why the store file itself was not read (empty when it was)."""

    def describe(self) -> str:
        """``the store data/x.duckdb`` or ``the snapshot data/x.snapshot.duckdb (42s old; data/x.duckdb: held...)``."""
        if self.snapshot_age is None:
            return f"the store {self.path}"
        return f"the snapshot {self.path} ({age_text(self.snapshot_age)} old; {self.held})"


def age_text(seconds: float) -> str:
    """``age_text(42)`` → ``'42s'``, ``age_text(5400)`` → ``'1h30m'``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _connect(path: Path, memory_limit: str, export_to: Path | None) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(path), read_only=True, config={"memory_limit": memory_limit})
    if export_to is None:
        return lock_down(connection)
    directory = str(export_to.resolve()).rstrip("/") + "/"  # set while file access is still on, before the lock
    return lock_down(connection, ("SET allowed_directories = ?", [[directory]]))


def _why(error: duckdb.Error) -> str:
    text = str(error).splitlines()[0]
    if not held_by_another_process(error):
        return text
    pid = re.search(r"\(PID (\d+)\)", text)
    return f"held by {f'process {pid[1]}' if pid else 'another process'} (a running service?)"


@contextmanager
def open_for_reading(
    path: Path, snapshot: Path, *, memory_limit: str = DEFAULT_MEMORY_LIMIT, export_to: Path | None = None
) -> Iterator[StoreSource]:
    """The store file opened read-only, else (held by its writer, or missing) the snapshot; closed on exit.

    StoreError naming both files and why neither could be opened.
    """
    problems: list[str] = []
    for candidate in (path, snapshot):
        if not candidate.is_file():
            problems.append(f"{candidate}: no such file")
            continue
        try:
            modified = candidate.stat().st_mtime
            connection = _connect(candidate, memory_limit, export_to)
        except (duckdb.Error, OSError) as error:
            why = _why(error) if isinstance(error, duckdb.Error) else str(error)
            problems.append(f"{candidate}: {why}")
            continue
        age = None if candidate == path else max(0.0, time.time() - modified)
        with Store(connection, candidate, True, Derivation(), memory_limit) as store:
            yield StoreSource(store, candidate, age, "; ".join(problems))
        return
    raise StoreError("cannot read the store or its snapshot: " + "; ".join(problems))
