"""Bucket counts for the rules: each bucket's article ids in a mapping (a changelogged table), full counts out.

The counts always carry a bucket's *full* ``article_count`` computed from its id set, so an at-least-once
redelivery or a replay after a crash never counts an article twice. They feed the rules within seconds. The
numbers analysts query are not these: the sink recomputes every derived indicator from the stored articles in
the same transaction as the article writes (see ``storage/derive.py``), so the DuckDB tables are exact whatever
the stream did.

A bucket's ids are spread over ``SHARDS`` table keys, so one batch rewrites a small part of a big bucket and the
changelog does not grow with the square of a bucket's size. :class:`ScopeFacts` keeps, in the same table and the
same way, what the measures of a rule's scope need of each member (source, story, novelty, score), and computes
them with the store's reference definition (:func:`~stackwatch.signals.indicators.scope_values`). Memory stays
bounded: a bucket's membership is dropped ``retention`` after the bucket ends, and hits for buckets older than that
are not counted by the stream (the store still counts them exactly).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, MutableMapping
from datetime import datetime, timedelta

from stackwatch.signals.conditions import Scope
from stackwatch.signals.indicators import ALL, bucket_start, expired, scope_values
from stackwatch.signals.messages import DynamicHit, IndicatorUpdate, Observation, parse_time

__all__ = ["DEFAULT_RETENTION", "ID_PREFIX", "SHARDS", "BucketCounts", "ScopeFacts", "Touched"]

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


_SEP = "\x1f"
Touched = tuple[str, datetime, frozenset[Scope]]
"""A (window, bucket start) a batch added articles to, and the scopes it touched there."""


class ScopeFacts:
    """Members of each watched (scope, window, bucket) with what the measures need of them, in ``table`` (the
    table of :class:`BucketCounts`, swept with it)::

        facts = ScopeFacts(counts.table, counts.retention, {(Scope("capex"), "1h"), (Scope(), "1h")})
        for window, start, scopes in facts.add(batch, now):
            facts.measures(Scope("capex"), window, start)["share"]     # as the store computes it

    An article counts once per bucket whatever the redeliveries (its newest facts replace the former)."""

    def __init__(
        self, table: MutableMapping[str, list[str]], retention: timedelta, watched: Iterable[tuple[Scope, str]]
    ) -> None:
        self.table = table
        self.retention = retention
        self.watched = sorted(set(watched), key=lambda item: (item[1], item[0].key))

    def add(self, batch: Iterable[Observation], now: datetime) -> list[Touched]:
        """Add ``batch``'s articles to the watched scopes; the buckets touched, in the order they first appear."""
        touched: dict[tuple[str, datetime], set[Scope]] = {}
        changed: dict[str, tuple[list[str], dict[str, int]]] = {}  # shard: (members, position by id prefix)
        windows = {window for _, window in self.watched}
        for observed in batch:
            starts = {window: bucket_start(observed.published_at, window) for window in windows}
            for scope, window in self.watched:
                start = starts[window]
                if expired(start, window, now, self.retention) or not scope.matches(observed):
                    continue
                touched.setdefault((window, start), set()).add(scope)
                key = _shard_key(f"{scope.key}|{window}|{start.isoformat()}", observed.article_id)
                if key not in changed:
                    members = list(self.table.get(key) or [])
                    changed[key] = (members, {member.split(_SEP, 1)[0]: at for at, member in enumerate(members)})
                members, positions = changed[key]
                entry = _entry(scope, observed)
                prefix = observed.article_id[:ID_PREFIX]
                if prefix in positions:
                    members[positions[prefix]] = entry  # its newest facts
                else:
                    positions[prefix] = len(members)
                    members.append(entry)
        for key, (members, _) in changed.items():
            if members != self.table.get(key):
                self.table[key] = members
        return [(window, start, frozenset(scopes)) for (window, start), scopes in touched.items()]

    def count(self, scope: Scope, window: str, start: datetime) -> int:
        """The scope's articles in the bucket."""
        bucket = f"{scope.key}|{window}|{start.isoformat()}"
        return sum(len(self.table.get(f"{bucket}#{shard:x}") or ()) for shard in range(SHARDS))

    def members(self, scope: Scope, window: str, start: datetime) -> list[str]:
        bucket = f"{scope.key}|{window}|{start.isoformat()}"
        return [member for shard in range(SHARDS) for member in self.table.get(f"{bucket}#{shard:x}") or ()]

    def measures(self, scope: Scope, window: str, start: datetime) -> dict[str, float]:
        """Every measure of ``scope`` in the bucket (0 for a bucket with no member), by the store's definitions
        (:func:`~stackwatch.signals.indicators.scope_values`); ``share`` needs the all-articles scope watched in
        ``window`` (else it is absent)."""
        rows = [member.split(_SEP) for member in self.members(scope, window, start)]
        watched_total = (Scope(), window) in self.watched
        total = len(self.members(Scope(), window, start)) if watched_total and scope != Scope() else len(rows)
        values = scope_values(
            [row[2] for row in rows],
            [row[1] for row in rows],
            [float(row[3]) for row in rows],
            None if scope.dynamic == ALL else [float(row[4]) for row in rows],
            total,
        )
        if not watched_total:
            values.pop("share")
        return values


def _entry(scope: Scope, observed: Observation) -> str:
    score = observed.scores.get(scope.dynamic, 0.0) if scope.dynamic != ALL else 0.0
    parts = (observed.article_id[:ID_PREFIX], observed.source, observed.story, repr(observed.novelty), repr(score))
    return _SEP.join(parts)
