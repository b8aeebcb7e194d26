"""The dashboard's time ranges: the default chosen from the store's volume, the weekly view summed from stored days,
the volume chart's legend and z-score axis, and the dynamic and entity lists held to the range.

Real DuckDB files (``Store.open``, the store's own derivation) for what the store answers; the range rule and the
charts are pure functions and are tested with plain values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.pipeline.web.dashboard import charts
from stackwatch.pipeline.web.dashboard.ranges import RANGES, default_range, parse_range
from stackwatch.signals.entities import Entity, Gazetteer
from stackwatch.signals.messages import Alert, Article, TaggedArticle
from stackwatch.storage.dashboard import (
    Point,
    Range,
    RecentVolume,
    Series,
    dynamic_detail,
    entity_detail,
    entity_names,
    recent_volume,
)
from stackwatch.storage.dashboard.reads import scope_series, series_points
from stackwatch.storage.derive import Derivation
from stackwatch.storage.store import Batch, Store

REPO = Path(__file__).resolve().parent.parent
DEMO_TIMELINE = REPO / "stackwatch" / "demo" / "timeline.jsonl"
NOW = datetime.now(UTC)


def tagged(key: str, at: datetime, labels: Sequence[str] = ("capex",), title: str = "") -> TaggedArticle:
    article = Article(key, f"https://x.test/{key}", title or f"article {key}", "", "wire", "rss", at, at)
    return TaggedArticle(article, tuple(labels), dict.fromkeys(labels, 0.9), "v1", at)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    gazetteer = Gazetteer([Entity("NVIDIA", ("nvidia",)), Entity("AT&T / Ünïcode 100% Labs", ("unicode labs",))])
    with Store.open(tmp_path / "stackwatch.duckdb", derivation=Derivation(gazetteer=gazetteer)) as opened:
        yield opened


# -- the default range ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        (RecentVolume(last_7d=504, last_30d=504, last_90d=504), Range(7, "1h")),  # 3 an hour
        (RecentVolume(last_7d=503, last_30d=2000, last_90d=9000), Range(30, "1d")),  # 10 a day over 30 days
        (RecentVolume(last_7d=100, last_30d=299, last_90d=450), Range(90, "1d")),  # 5 a day over 90 days
        (RecentVolume(last_7d=46, last_30d=153, last_90d=438), Range(182, "1w")),  # the demo's figures
        (RecentVolume(), Range(182, "1w")),  # an empty store
    ],
)
def test_the_default_is_the_finest_range_whose_buckets_are_not_mostly_empty(
    volume: RecentVolume, expected: Range
) -> None:
    assert default_range(volume) == expected


def test_a_request_gets_the_range_it_names_and_none_when_it_names_none() -> None:
    for days, width in RANGES:
        assert parse_range({"days": str(days), "width": width}) == Range(days, width)
    assert parse_range({}) is None
    assert parse_range({"days": "", "width": ""}) is None
    assert parse_range({"days": "30"}) == Range(30, "1d")  # a known days: its finest offered width
    assert parse_range({"days": "90", "width": "1h"}) == Range(90, "1d")
    assert parse_range({"width": "1w"}) == Range(182, "1w")  # a known width alone: its shortest range
    for days, width in [("1000000", "1y"), ("5", ""), ("-7", ""), ("７", ""), ("7" * 5000, ""), ("30", "1y")]:
        assert parse_range({"days": days, "width": width}) == (Range(30, "1d") if days == "30" else None)
    assert parse_range({"days": "-7", "width": "1h"}) == Range(7, "1h")  # a bad days is ignored, the width kept


def test_the_weekly_range_is_26_whole_iso_weeks_ending_with_this_one() -> None:
    weekly = Range(182, "1w")
    assert weekly.since.weekday() == 0
    assert (weekly.since.hour, weekly.since.minute) == (0, 0)
    assert weekly.until - weekly.since == timedelta(weeks=26)
    assert weekly.since < NOW < weekly.until
    assert weekly.until - NOW <= timedelta(weeks=1)


def test_the_bundled_demo_timeline_opens_on_the_weekly_view(store: Store) -> None:
    ages = [json.loads(line)["age_hours"] for line in DEMO_TIMELINE.read_text(encoding="utf-8").splitlines()]
    assert 400 <= len(ages) <= 800
    assert max(ages) >= 16 * 7 * 24  # a few hundred articles over more than 16 weeks
    store.write(Batch(tagged=[tagged(f"d{i}", NOW - timedelta(hours=age)) for i, age in enumerate(ages)]))
    volume = recent_volume(store.connection)
    assert 0 < volume.last_7d <= volume.last_30d <= volume.last_90d <= len(ages)
    assert default_range(volume) == Range(182, "1w")


def test_a_store_with_three_articles_an_hour_opens_on_hourly_bars(store: Store) -> None:
    hours = 6 * 24  # six whole days of the last seven: three and a half articles an hour over all seven
    store.write(Batch(tagged=[tagged(f"h{i}", NOW - timedelta(minutes=i * 60 / 3.5)) for i in range(hours * 4)]))
    assert default_range(recent_volume(store.connection)) == Range(7, "1h")


# -- the weekly view --------------------------------------------------------------------------------------------------


def test_weekly_bars_are_the_sums_of_the_stored_days_and_the_line_each_weeks_highest_daily_zscore(
    store: Store,
) -> None:
    weekly = Range(182, "1w")
    days = [NOW - timedelta(days=offset) for offset in (1, 2, 9, 10, 11, 30, 31, 60, 61, 62, 63, 64)]
    articles = [tagged(f"w{day:%j}-{n}", day) for day in days for n in range(1 + day.day % 4)]
    store.write(Batch(tagged=articles))
    series = scope_series(series_points(store.connection, weekly, dynamic="capex"), "capex")
    daily = store.connection.execute(
        "SELECT indicator, bucket_start, value FROM indicators WHERE dynamic = 'capex' AND entity = '*' "
        "AND source = '*' AND bucket_width = '1d' AND indicator IN ('article_count', 'zscore') AND bucket_start >= ?",
        [weekly.since],
    ).fetchall()
    sums: dict[datetime, float] = {}
    highest: dict[datetime, float] = {}
    for indicator, start, value in daily:
        week = (start - timedelta(days=start.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        if indicator == "article_count":
            sums[week] = sums.get(week, 0.0) + value
        else:
            highest[week] = max(highest.get(week, value), value)
    assert {point.at: point.value for point in series.volume} == sums
    assert {point.at: point.value for point in series.zscore} == highest
    assert all(point.at.weekday() == 0 for point in series.volume)
    assert series.total == len(articles)
    assert len(series.volume) >= 4  # bars in several weeks, not one needle


# -- the volume chart -------------------------------------------------------------------------------------------------


def _ticks(svg: str) -> dict[str, str]:
    return dict(re.findall(r'data-tick="(\w+)">([^<]*)<', svg))


def test_the_volume_chart_names_bars_and_line_in_a_legend_and_gives_the_zscore_its_own_axis() -> None:
    weekly = Range(182, "1w")
    start = weekly.since
    series = Series(
        "capex",
        (Point(start, 4.0), Point(start + timedelta(weeks=1), 20.0)),
        (Point(start, -1.5), Point(start + timedelta(weeks=1), 3.2)),
    )
    svg = charts.volume_chart(series, weekly)
    legend = re.search(r'<g class="legend">(.*?)</g>', svg)
    assert legend is not None
    assert "articles per week" in legend.group(1)
    assert "highest daily z-score of the week (right axis)" in legend.group(1)
    assert _ticks(svg) == {"max": "3.2", "zero": "0", "min": "-1.5"}
    assert 'class="zaxis"' in svg
    assert 'class="zero"' in svg
    assert svg.count('class="zdot"') == 2
    hourly = charts.volume_chart(Series("capex", (Point(Range().since, 2.0),), (Point(Range().since, 0.5),)), Range())
    assert "articles per hour" in hourly
    assert "z-score of the hour (right axis)" in hourly
    assert _ticks(hourly) == {"max": "0.5", "zero": "0"}  # no min tick when nothing is negative


def test_a_chart_without_zscores_has_no_line_in_its_legend_and_no_right_axis() -> None:
    daily = Range(30, "1d")
    svg = charts.volume_chart(Series("NVIDIA", (Point(daily.since, 3.0),)), daily)
    assert "articles per day" in svg
    assert "z-score" not in svg
    assert "zaxis" not in svg


def test_every_text_in_a_chart_is_escaped() -> None:
    hostile = "<script>alert(1)</script>&\"'"
    weekly = Range(182, "1w")
    series = Series(hostile, (Point(weekly.since, 1.0),), (Point(weekly.since, -2.0),))
    for svg in (
        charts.volume_chart(series, weekly),
        charts.line_chart(series, weekly),
        charts.heat_map([hostile], [hostile], {(hostile, hostile): 1.0}, dynamic_link="/d/", query="days=7&width=1h"),
    ):
        assert "<script" not in svg
        assert "&lt;script&gt;" in svg
    heat = charts.heat_map(["AT&T / 100%"], ["capex"], {("AT&T / 100%", "capex"): 2.0}, link="/e/", query="a=1&b=2")
    assert 'href="/e/AT%26T%20%2F%20100%25?a=1&amp;b=2"' in heat


def test_a_chart_marks_where_another_classifier_version_begins(store: Store) -> None:
    """The numbers either side of a model change come from different models: the chart says where."""
    daily = Range(30, "1d")
    changed_at = NOW - timedelta(days=5)
    old = tagged("old", NOW - timedelta(days=10))
    new = replace(tagged("new", changed_at), model_version="model-<b>2</b>")
    store.write(Batch(tagged=[old, new, tagged("later", NOW - timedelta(days=1))]))
    detail = dynamic_detail(store.connection, "capex", daily)
    assert [(change.version, change.at) for change in detail.series.changes] == [("model-<b>2</b>", changed_at)]
    svg = charts.volume_chart(detail.series, daily)
    assert svg.count("<title>classifier ") == 1  # one mark (and a swatch in the legend)
    assert "classifier model-&lt;b&gt;2&lt;/b&gt; from" in svg  # escaped
    assert "model change" in svg  # in the legend
    unchanged = charts.volume_chart(Series("capex", (Point(daily.since, 1.0),)), daily)
    assert 'class="model"' not in unchanged
    assert "model change" not in unchanged


# -- lists held to the range ------------------------------------------------------------------------------------------


def test_dynamic_and_entity_pages_list_only_what_falls_in_their_range(store: Store) -> None:
    recent, old = NOW - timedelta(days=2), NOW - timedelta(days=40)
    store.write(
        Batch(
            tagged=[
                tagged("new", recent, ("capex",), "NVIDIA orders more capacity"),
                tagged("old", old, ("capex",), "NVIDIA orders capacity again"),
            ],
            alerts=[
                Alert("a-new", "capex-any", "warning", "capex", "article_count", "1d", recent, 1, 1, "m", (), recent),
                Alert("a-old", "capex-any", "warning", "capex", "article_count", "1d", old, 1, 1, "m", (), old),
            ],
        )
    )
    week, quarter = Range(7, "1d"), Range(90, "1d")
    capex = dynamic_detail(store.connection, "capex", week)
    assert [article.id for article in capex.articles] == ["new"]
    assert [alert.id for alert in capex.alerts] == ["a-new"]
    assert len(capex.stories) == 1
    assert [article.id for article in dynamic_detail(store.connection, "capex", quarter).articles] == ["new", "old"]
    assert [alert.id for alert in dynamic_detail(store.connection, "capex", quarter).alerts] == ["a-new", "a-old"]
    nvidia = entity_detail(store.connection, "NVIDIA", week)
    assert [article.id for article in nvidia.articles] == ["new"]
    assert len(nvidia.stories) == 1
    assert [article.id for article in entity_detail(store.connection, "NVIDIA", quarter).articles] == ["new", "old"]


def test_a_stored_entity_is_found_in_any_case(store: Store) -> None:
    store.write(Batch(tagged=[tagged("u", NOW, ("edge",), "Unicode Labs ships an NPU")]))
    assert entity_names(store.connection, "at&t / ünïcode 100% labs") == ("AT&T / Ünïcode 100% Labs",)
    assert entity_names(store.connection, "AT&T / ÜNÏCODE 100% LABS") == ("AT&T / Ünïcode 100% Labs",)
    assert entity_names(store.connection, "AT&T") == ()
    assert entity_names(store.connection, "%") == ()
