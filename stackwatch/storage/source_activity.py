"""What the source-health watcher reads from the store: when each source last delivered, and which health alerts
are open. Functions over a DuckDB connection, called on the store's thread::

    newest_stored(store.connection)                       # {"wire": datetime(...), ...}: every source
    newest_stored(store.connection, since=high_water)     # only sources with articles stored from then on
    open_health_alerts(store.connection)                  # {(rule, dedup_key): Firing(...)}: fired, not resolved

An article keeps the ``stored_at`` of its first write (a re-read article is not a new delivery), and the sink
writes one transaction at a time, so ``stored_at`` only grows and ``since`` reads only the newest row groups.
"""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from stackwatch.signals.messages import parse_time
from stackwatch.signals.source_health import KIND, Firing
from stackwatch.storage.store import as_store_error

__all__ = ["newest_stored", "open_health_alerts"]


def newest_stored(connection: duckdb.DuckDBPyConnection, since: datetime | None = None) -> dict[str, datetime]:
    """Per source, the ``stored_at`` of its newest article (stored from ``since`` on, when given)."""
    with as_store_error("cannot read when each source last delivered"):
        if since is None:
            query = connection.execute("SELECT source, max(stored_at) FROM articles GROUP BY source")
        else:
            query = connection.execute(
                "SELECT source, max(stored_at) FROM articles WHERE stored_at >= ? GROUP BY source", [since]
            )
        rows = query.fetchall()
    return {row[0]: parse_time(row[1]) for row in rows}


def open_health_alerts(connection: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], Firing]:
    """The source-health alerts whose newest alert (by firing time, then storing time) of their rule and dedup key
    is a firing one."""
    with as_store_error("cannot read the open source-health alerts"):
        rows = connection.execute(
            "SELECT rule, dedup_key, arg_max(status, (fired_at, stored_at)),"
            " arg_max(bucket_start, (fired_at, stored_at)), arg_max(labels, (fired_at, stored_at))"
            " FROM (SELECT a.rule, d.dedup_key, d.status, a.bucket_start, d.labels, a.fired_at, a.stored_at"
            " FROM alerts a JOIN alert_details d ON d.alert_id = a.id WHERE d.kind = ?)"
            " GROUP BY rule, dedup_key",
            [KIND],
        ).fetchall()
    firing = {}
    for rule, dedup, status, since, labels_json in rows:
        if status != "firing":
            continue
        labels = json.loads(labels_json or "{}")
        firing[(rule, dedup)] = Firing(
            rule, dedup, str(labels.get("source", "")), str(labels.get("problem", "")), parse_time(since)
        )
    return firing
