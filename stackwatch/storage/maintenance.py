"""Jobs on a store opened for writing: snapshots for readers, Parquet export, retention, size reports.

    snapshot(store, Path("data/stackwatch.snapshot.duckdb"))    # then: duckdb -readonly that-file
    export_parquet(store, Path("export/"))                      # export/articles/day=2026-05-01/*.parquet ...
    report = apply_retention(store, body_days=90, dead_letter_days=30)

Every job runs on the store's own connection (so on the writer's thread in the service).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from stackwatch.errors import StoreError
from stackwatch.signals.messages import utcnow
from stackwatch.storage.store import Store

__all__ = ["EXPORTS", "RetentionReport", "apply_retention", "export_parquet", "snapshot", "table_counts"]

EXPORTS: dict[str, str] = {
    "articles": "SELECT *, published_at::DATE AS day FROM articles",
    "article_dynamics": "SELECT d.*, a.published_at::DATE AS day FROM article_dynamics d"
    " JOIN articles a ON a.id = d.article_id",
    "article_entities": "SELECT e.*, a.published_at::DATE AS day FROM article_entities e"
    " JOIN articles a ON a.id = e.article_id",
    "article_stories": "SELECT *, published_at::DATE AS day FROM article_stories",
    "stories": "SELECT *, first_seen::DATE AS day FROM stories",
    "indicators": "SELECT *, bucket_start::DATE AS day FROM indicators",
    "alerts": "SELECT *, fired_at::DATE AS day FROM alerts",
}
"""What ``export --parquet`` writes: one directory per table, partitioned by ``day`` (UTC)."""


@dataclass(frozen=True, slots=True)
class RetentionReport:
    bodies_dropped: int
    dead_letters_dropped: int
    file_bytes: int
    row_counts: dict[str, int]


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def snapshot(store: Store, target: Path) -> Path:
    """Write a consistent copy of the store to ``target`` (atomically replaced; readers see old or new)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    connection = store.connection
    try:
        row = connection.execute("SELECT current_database()").fetchone()
        name = '"' + str(row[0] if row else "main").replace('"', '""') + '"'
        connection.execute(f"ATTACH {_quote(partial)} AS stackwatch_snapshot")
        try:
            connection.execute(f"COPY FROM DATABASE {name} TO stackwatch_snapshot")  # one transaction: consistent
        finally:
            connection.execute("DETACH stackwatch_snapshot")
    except duckdb.Error as error:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot write snapshot {target}: {error}") from error
    os.replace(partial, target)
    return target


def export_parquet(store: Store, directory: Path, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Export each table of :data:`EXPORTS` as Parquet partitioned by day; returns rows per table.

    ``progress(table)`` is called after each table is written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    connection = store.connection
    try:
        connection.execute("BEGIN TRANSACTION")  # one snapshot for every table
        try:
            for table, query in EXPORTS.items():
                row = connection.execute(f"SELECT count(*) FROM ({query})").fetchone()  # noqa: S608 (constants)
                counts[table] = int(row[0]) if row else 0
                if counts[table]:
                    connection.execute(
                        f"COPY ({query}) TO {_quote(directory / table)}"
                        " (FORMAT parquet, PARTITION_BY (day), OVERWRITE_OR_IGNORE)"
                    )
                if progress is not None:
                    progress(table)
        finally:
            connection.execute("COMMIT")
    except duckdb.Error as error:
        raise StoreError(f"cannot export to {directory}: {error}") from error
    return counts


def table_counts(store: Store) -> dict[str, int]:
    return {table: store.count(table) for table in sorted(store.tables())}


def apply_retention(
    store: Store, *, body_days: int | None, dead_letter_days: int | None, now: datetime | None = None
) -> RetentionReport:
    """Drop article bodies and dead letters past their age, checkpoint to reclaim space, record a report row."""
    now = now or utcnow()
    connection = store.connection
    try:
        bodies = dead = 0
        if body_days is not None:
            row = connection.execute(
                "UPDATE articles SET body = NULL WHERE body IS NOT NULL AND published_at < ?",
                [now - timedelta(days=body_days)],
            ).fetchone()
            bodies = int(row[0]) if row else 0
        if dead_letter_days is not None:
            row = connection.execute(
                "DELETE FROM dead_letters WHERE received_at < ?", [now - timedelta(days=dead_letter_days)]
            ).fetchone()
            dead = int(row[0]) if row else 0
        connection.execute("CHECKPOINT")
        counts = table_counts(store)
        size = store.path.stat().st_size if store.path.exists() else 0
        connection.execute(
            "INSERT INTO maintenance_runs VALUES (?, ?, ?, ?)", [now, bodies, size, json.dumps(counts, sort_keys=True)]
        )
    except (duckdb.Error, OSError) as error:
        raise StoreError(f"retention job failed on {store.path}: {error}") from error
    return RetentionReport(bodies, dead, size, counts)
