"""The time ranges the dashboard offers, the one a request names, and the default chosen from the store's volume.

    rng = parse_range(request.query) or default_range(await dashboard.read(queries.recent_volume))

The default is the finest range whose buckets are not mostly empty (:data:`DEFAULT_RULE`): hourly bars need
about 3 articles an hour, daily bars over 30 days about 10 a day, over 90 days about 5 a day; below that the page
opens on weekly bars over 26 weeks.
"""

from __future__ import annotations

from collections.abc import Mapping

from stackwatch.storage.dashboard import Range, RecentVolume

__all__ = ["DEFAULT_RULE", "FALLBACK", "RANGES", "default_range", "parse_range"]

RANGES: tuple[tuple[int, str], ...] = ((7, "1h"), (7, "1d"), (30, "1d"), (90, "1d"), (182, "1w"))
"""The ranges the nav offers, finest first: (days, bucket width)."""

DEFAULT_RULE: tuple[tuple[Range, str, float], ...] = (
    (Range(7, "1h"), "last_7d", 3.0),  # >= 3 articles an hour over the last 7 days
    (Range(30, "1d"), "last_30d", 10.0),  # >= 10 a day over the last 30 days
    (Range(90, "1d"), "last_90d", 5.0),  # >= 5 a day over the last 90 days
)
"""(range, the :class:`RecentVolume` field it is judged by, the least articles per bucket it needs), finest
first. The first range whose volume reaches its minimum is the default."""

FALLBACK = Range(182, "1w")
"""The default when no range of :data:`DEFAULT_RULE` has the volume: weekly bars over 26 weeks."""


def default_range(volume: RecentVolume) -> Range:
    """The finest range of :data:`DEFAULT_RULE` whose buckets hold on average at least its minimum, else
    :data:`FALLBACK`.

    >>> default_range(RecentVolume(last_7d=600, last_30d=900, last_90d=1200))
    Range(days=7, width='1h')
    >>> default_range(RecentVolume(last_7d=40, last_30d=140, last_90d=400))
    Range(days=182, width='1w')
    """
    for rng, field, per_bucket in DEFAULT_RULE:
        buckets = rng.days * 86400 // int(rng.bucket.total_seconds())
        if getattr(volume, field) >= per_bucket * buckets:
            return rng
    return FALLBACK


def parse_range(query: Mapping[str, str]) -> Range | None:
    """The range a request names with ``?days=`` and ``?width=``, or None when it names none (then the default
    applies). A known ``days`` with a width not offered for it takes its finest offered width; a known ``width``
    alone its shortest range; values not offered count as not named.

    >>> parse_range({"days": "30"}), parse_range({"width": "1w"}), parse_range({"days": "5"})
    (Range(days=30, width='1d'), Range(days=182, width='1w'), None)
    """
    days_text, width = query.get("days", ""), query.get("width", "")
    days = int(days_text) if days_text.isascii() and days_text.isdigit() and len(days_text) <= 4 else None
    if days is not None and (days, width) in RANGES:
        return Range(days, width)
    for offered_days, offered_width in RANGES:
        if offered_days == days or (days is None and offered_width == width):
            return Range(offered_days, offered_width)
    return None
