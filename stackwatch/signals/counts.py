"""Bucket counts for the rules: each bucket's article ids in a mapping (a changelogged table), full counts out.

The counts always carry a bucket's *full* ``article_count`` computed from its id set, so an at-least-once
redelivery or a replay after a crash never counts an article twice. They feed the rules within seconds. The
numbers analysts query are not these: the sink recomputes every derived indicator from the stored articles in
the same transaction as the article writes (see ``storage/derive.py``), so the DuckDB tables are exact whatever
the stream did.

A bucket's ids are spread over ``SHARDS`` table keys, so one batch rewrites a small part of a big bucket and the
changelog does not grow with the square of a bucket's size. Memory stays bounded: a bucket's membership is
dropped ``retention`` after the bucket ends, and hits for buckets older than that are not counted by the stream
(the store still counts them exactly).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, MutableMapping
from datetime import datetime, timedelta

from stackwatch.signals.indicators import expired
from stackwatch.signals.messages import DynamicHit, IndicatorUpdate, parse_time

__all__ = ["DEFAULT_RETENTION", "ID_PREFIX", "SHARDS", "BucketCounts"]

ID_PREFIX = 16
"""Bucket membership keeps this many characters of each article id (64 bits of a hex id: no collisions)."""
SHARDS = 16
DEFAULT_RETENTION = timedelta(days=3)


def _shard_key(bucket: str, article_id: str) -> str:
    return f"{bucket}#{zlib.crc32(article_id.encode('utf-8')) % SHARDS:x}"


class BucketCounts:
    """Counts distinct articles per (dynamic, window, bucket) in ``table`` (a Faust table or a dict)::

    counts = BucketCounts(app.Table("bucket-shards", default=None))
    updates = counts.add(hits, utcnow())      # one IndicatorUpdate per bucket the hits touched
    """

    def __init__(self, table: MutableMapping[str, list[str]], retention: timedelta = DEFAULT_RETENTION) -> None:
        self.table = table
        self.retention = retention

    def add(self, hits: Iterable[DynamicHit], now: datetime) -> list[IndicatorUpdate]:
        """Count ``hits``; the full count of every bucket they touched, in the order buckets first appear."""
        touched: dict[str, DynamicHit] = {}
        changed: dict[str, list[str]] = {}
        for hit in hits:
            if expired(hit.bucket_start, hit.window, now, self.retention):
                continue  # too late for alerts; the store recomputes this bucket exactly from stored articles
            touched.setdefault(hit.key, hit)
            key = _shard_key(hit.key, hit.article_id)
            members = changed.get(key) or self.table.get(key) or []
            short_id = hit.article_id[:ID_PREFIX]
            if short_id not in members:
                changed[key] = [*members, short_id]
        for key, members in changed.items():
            self.table[key] = members
        return [
            IndicatorUpdate("article_count", hit.dynamic, hit.window, hit.bucket_start, float(self.count(bucket)))
            for bucket, hit in touched.items()
        ]

    def count(self, bucket: str) -> int:
        return sum(len(self.table.get(f"{bucket}#{shard:x}") or ()) for shard in range(SHARDS))

    def sweep(self, now: datetime) -> int:
        """Forget buckets that ended more than ``retention`` ago; returns how many table keys went."""
        gone = []
        for key in list(self.table.keys()):
            _, window, start = str(key).rsplit("#", 1)[0].split("|", 2)
            if expired(parse_time(start), window, now, self.retention):
                gone.append(key)
        for key in gone:
            del self.table[key]
        return len(gone)
