"""Former indicator values, kept when ``stackwatch reclassify`` re-tags stored articles (schema 17,
``indicator_history``)::

    kept_at = keep_indicators(connection, since)    # before the first re-tagged page is written
    ...                                              # re-tag; the store recomputes the indicators
    record_changes(connection, since, kept_at)       # keep only what the new tags changed

Every indicator row whose bucket ends after ``since`` is copied first: counts of those buckets change with their
tags, and the signals (EWMA, z-score, momentum) of every later bucket with them. The copy names the classifier
versions that had tagged the bucket's articles (of the row's dynamic; all articles for ``*``). Once the run is
done, a row the run added is marked by a copy with a NULL value, and the copies equal to the current value are
dropped. A run that dies between the two leaves its copies whole: they hold the values as they were, so the
as-of reading of docs/sql.md stays right for every row that existed; a row such a run added is not marked, and
reads as if it had existed before (until then, with the value the next run keeps).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from stackwatch.signals.indicators import WINDOWS, bucket_start
from stackwatch.storage.store import as_store_error

__all__ = ["keep_indicators", "record_changes"]

_KEY = "indicator, dynamic, entity, source, bucket_width, bucket_start"
_SAME_KEY = " AND ".join(f"i.{column} = h.{column}" for column in _KEY.split(", "))
_PER_WIDTH = [f"(bucket_width = '{width}' AND bucket_start >= $from_{width})" for width in WINDOWS]
_ENDS_AFTER_SINCE = f"({' OR '.join(_PER_WIDTH)})"
"""A bucket that ends after ``since``: it starts at or after the bucket of its width holding ``since``."""


def _bounds(since: datetime) -> dict[str, datetime]:
    """The parameters of ``_ENDS_AFTER_SINCE``: per width, the start of the bucket that holds ``since``."""
    return {f"from_{width}": bucket_start(since, width) for width in WINDOWS}


def keep_indicators(connection: duckdb.DuckDBPyConnection, since: datetime) -> datetime:
    """Copy every indicator row of a bucket ending after ``since`` into ``indicator_history``, superseded now;
    return that time (the run's mark for :func:`record_changes`)."""
    with as_store_error("cannot keep the former indicators"):
        row = connection.execute("SELECT now()").fetchone()
        assert row is not None
        kept_at: datetime = row[0]
        connection.execute(
            f"INSERT INTO indicator_history SELECT {_KEY}, value,"  # noqa: S608 (fixed columns)
            "  coalesce(v.versions, []::VARCHAR[]), updated_at, $kept_at"
            " FROM indicators LEFT JOIN ("
            "  SELECT bucket_width, bucket_start, dynamic, list(DISTINCT model_version ORDER BY model_version)"
            f"   AS versions FROM indicator_versions WHERE {_ENDS_AFTER_SINCE} GROUP BY ALL"
            " ) v USING (bucket_width, bucket_start, dynamic)"
            f" WHERE {_ENDS_AFTER_SINCE}",
            {"kept_at": kept_at, **_bounds(since)},
        )
    return kept_at


def record_changes(connection: duckdb.DuckDBPyConnection, since: datetime, kept_at: datetime) -> int:
    """Finish what :func:`keep_indicators` began at ``kept_at``: mark the rows added since with a NULL value and
    drop the copies that still hold their current value. Returns how many rows the run changed or added."""
    with as_store_error("cannot record which indicators changed"):
        connection.execute("BEGIN TRANSACTION")
        try:
            connection.execute(
                f"INSERT INTO indicator_history SELECT {_KEY}, NULL, []::VARCHAR[], NULL, $kept_at"  # noqa: S608
                f" FROM indicators i WHERE {_ENDS_AFTER_SINCE} AND NOT EXISTS ("
                f"  SELECT 1 FROM indicator_history h WHERE h.superseded_at = $kept_at AND {_SAME_KEY})",
                {"kept_at": kept_at, **_bounds(since)},
            )
            connection.execute(
                "DELETE FROM indicator_history h WHERE superseded_at = $kept_at AND EXISTS ("  # noqa: S608
                f" SELECT 1 FROM indicators i WHERE {_SAME_KEY} AND i.value = h.value)",
                {"kept_at": kept_at},
            )
            row = connection.execute(
                "SELECT count(*) FROM indicator_history WHERE superseded_at = $kept_at", {"kept_at": kept_at}
            ).fetchone()
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return int(row[0]) if row else 0
