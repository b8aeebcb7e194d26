"""Jobs on a store opened for writing: snapshots for readers, Parquet export, retention, size reports.

    snapshot(store, Path("data/stackwatch.snapshot.duckdb"))    # then: duckdb -readonly that-file
    export_parquet(store, Path("export/"))                      # export/articles/day=2026-05-01/*.parquet ...
    report = apply_retention(store, body_days=90, dead_letter_days=30)

Every job runs on the store's own connection (so on the writer's thread in the service), within the store's
``storage.memory_limit`` whatever its size: export and retention go a calendar month at a time, and a job that
still runs out of memory fails with a StoreError that names the cap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from stackwatch.errors import StoreError
from stackwatch.signals.messages import utcnow
from stackwatch.storage.store import Store, store_error

__all__ = ["EXPORTS", "RetentionReport", "apply_retention", "export_parquet", "months", "snapshot", "table_counts"]

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
    "alert_details": "SELECT d.*, a.fired_at::DATE AS day FROM alert_details d JOIN alerts a ON a.id = d.alert_id",
    "article_explanations": "SELECT *, published_at::DATE AS day FROM article_explanations",
    "tag_history": "SELECT *, published_at::DATE AS day FROM tag_history",
    "indicator_history": "SELECT *, bucket_start::DATE AS day FROM indicator_history",
    "story_aliases": "SELECT *, merged_at::DATE AS day FROM story_aliases",
    "label_corrections": "SELECT *, corrected_at::DATE AS day FROM label_corrections",
}
"""What ``export --parquet`` writes: one directory per table, partitioned by ``day`` (UTC)."""

_WHOLE_DAYS = "day >= DATE '{0}' AND day < DATE '{1}'"


@dataclass(slots=True)
class _Steps:
    """Counts a job's steps and reports each to its ``progress(done, total)``, when it has one."""

    progress: Callable[[int, int], None] | None
    total: int = 0
    done: int = 0

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


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
        raise store_error(f"cannot write snapshot {target}", error, store.memory_limit) from error
    os.replace(partial, target)
    return target


def months(first: date, last: date) -> Iterator[tuple[date, date]]:
    """[start, end) of each calendar month from the one holding ``first`` to the one holding ``last``."""
    year, month = first.year, first.month
    while date(year, month, 1) <= last:
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        yield date(year, month, 1), date(*following, 1)
        year, month = following


def export_parquet(store: Store, directory: Path, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Export each table of :data:`EXPORTS` as Parquet partitioned by day; returns rows per table.

    One read transaction, so every table is of the same moment. Each table is written a calendar month at a time:
    DuckDB partitions what one COPY writes before writing it, so a whole table at once spilled all of it to disk.
    ``progress(done, total)`` after each step: a month of a table (a table without rows is one step).
    """
    directory.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    connection = store.connection
    try:
        connection.execute("BEGIN TRANSACTION")  # one snapshot for every table
        try:
            spans: dict[str, list[tuple[date, date]]] = {}
            for table, query in EXPORTS.items():
                row = connection.execute(f"SELECT count(*), min(day), max(day) FROM ({query})").fetchone()  # noqa: S608 (constants)
                counts[table] = int(row[0]) if row else 0
                spans[table] = list(months(row[1], row[2])) if row and counts[table] else []
            step = _Steps(progress, total=sum(max(1, len(span)) for span in spans.values()))
            for table, query in EXPORTS.items():
                for start, end in spans[table]:
                    days = _WHOLE_DAYS.format(start.isoformat(), end.isoformat())
                    connection.execute(
                        f"COPY (SELECT * FROM ({query}) WHERE {days}) TO {_quote(directory / table)}"  # noqa: S608
                        " (FORMAT parquet, PARTITION_BY (day), OVERWRITE_OR_IGNORE)"
                    )
                    step()
                if not spans[table]:
                    step()
        except BaseException as failure:  # a failed statement aborted the transaction: COMMIT would fail too
            try:
                connection.execute("ROLLBACK")
            except duckdb.Error as rollback:
                failure.add_note(f"rollback: {rollback}")
            raise
        connection.execute("COMMIT")
    except duckdb.Error as error:
        raise store_error(f"cannot export to {directory}", error, store.memory_limit) from error
    return counts


def table_counts(store: Store) -> dict[str, int]:
    """Rows per stored table (not views, which hold nothing and may aggregate a whole table; not scratch tables)."""
    rows = store.connection.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()"
        " AND table_schema = 'main' AND table_type = 'BASE TABLE'"
    ).fetchall()
    return {table: store.count(table) for table in sorted(str(row[0]) for row in rows)}


def apply_retention(
    store: Store,
    *,
    body_days: int | None,
    dead_letter_days: int | None,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RetentionReport:
    """Drop article bodies and dead letters past their age, checkpoint to reclaim space, record a report row.

    Bodies go a calendar month of publication at a time, each month its own transaction: the first run on a
    large store drops millions, and each month dropped stays dropped if a later one fails. ``progress(done,
    total)`` after each step: each month of bodies, the dead letters, the checkpoint."""
    now = now or utcnow()
    connection = store.connection
    step = _Steps(progress)
    try:
        bodies = dead = 0
        spans: list[tuple[date, date]] = []
        cutoff = None if body_days is None else now - timedelta(days=body_days)
        if cutoff is not None:
            row = connection.execute(
                "SELECT min(published_at) FROM articles WHERE body IS NOT NULL AND published_at < ?", [cutoff]
            ).fetchone()
            oldest = row[0] if row else None
            spans = list(months(oldest.date(), cutoff.date())) if oldest is not None else []
        step.total = len(spans) + 2
        for start, end in spans:
            row = connection.execute(
                "UPDATE articles SET body = NULL WHERE body IS NOT NULL AND published_at < ?"
                " AND published_at >= ?::DATE AND published_at < ?::DATE",
                [cutoff, start, end],
            ).fetchone()
            bodies += int(row[0]) if row else 0
            step()
        if dead_letter_days is not None:
            row = connection.execute(
                "DELETE FROM dead_letters WHERE received_at < ?", [now - timedelta(days=dead_letter_days)]
            ).fetchone()
            dead = int(row[0]) if row else 0
        step()
        connection.execute("CHECKPOINT")
        step()
        counts = table_counts(store)
        size = store.path.stat().st_size if store.path.exists() else 0
        connection.execute(
            "INSERT INTO maintenance_runs VALUES (?, ?, ?, ?)", [now, bodies, size, json.dumps(counts, sort_keys=True)]
        )
    except duckdb.Error as error:
        raise store_error(f"retention job failed on {store.path}", error, store.memory_limit) from error
    except OSError as error:
        raise StoreError(f"retention job failed on {store.path}: {error}") from error
    return RetentionReport(bodies, dead, size, counts)
