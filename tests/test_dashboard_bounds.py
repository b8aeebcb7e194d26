"""What bounds the dashboard's reads as the store grows: an alert shows the evidence stored with it, the overview
lists only what falls in its range, lists of the newest rows widen from the newest days without changing what they
list, an article is found on the day its link names (and without it), and a search counts up to a cap.

Real DuckDB files (``Store.open``, the store's own derivation and evidence); the links are the real templates
rendered by the dashboard's Jinja2 environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.pipeline.web.dashboard.templating import build_environment
from stackwatch.pipeline.web.dashboard.views import published_day
from stackwatch.signals.entities import Entity, Gazetteer
from stackwatch.signals.messages import Alert, Article, TaggedArticle
from stackwatch.storage.dashboard import (
    COUNT_CAP,
    RECENT_ARTICLES,
    STORIES,
    AlertView,
    ArticleEntity,
    Evidence,
    Range,
    SearchFilters,
    article_detail,
    dynamic_detail,
    overview,
    search_articles,
)
from stackwatch.storage.derive import Derivation
from stackwatch.storage.store import Batch, Store

NOW = datetime.now(UTC)
HOUR = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
"""A whole hour that has ended: the alerts' bucket."""
DYNAMICS = ("capex", "edge")


def tagged(
    key: str,
    at: datetime,
    labels: Sequence[str] = ("capex",),
    title: str = "",
    score: float = 0.9,
    summary: str = "",
) -> TaggedArticle:
    article = Article(key, f"https://x.test/{key}", title or f"article {key}", summary, "wire", "rss", at, at)
    return TaggedArticle(article, tuple(labels), dict.fromkeys(labels, score), "v1", at)


def alert(key: str, bucket: datetime, labels: dict[str, str] | None = None, width: str = "1h") -> Alert:
    return Alert(
        key, f"rule-{key}", "warning", "capex", "article_count", width, bucket, 2, 1, "m", (), bucket,
        labels=labels or {},
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    gazetteer = Gazetteer([Entity("NVIDIA", ("nvidia",)), Entity("AMD", ("amd",))])
    with Store.open(tmp_path / "stackwatch.duckdb", derivation=Derivation(gazetteer=gazetteer)) as opened:
        yield opened


def _ids(items: Sequence[object]) -> list[str | None]:
    return [getattr(item, "id", None) for item in items]


# -- an alert's evidence is the one stored with it ---------------------------------------------------------------------


def test_an_alerts_evidence_on_the_pages_is_the_evidence_stored_when_it_fired(store: Store) -> None:
    store.write(Batch(tagged=[tagged(f"e{i}", HOUR + timedelta(minutes=i), score=0.5 + i / 10) for i in range(3)]))
    store.write(Batch(alerts=[alert("surge", HOUR)]))
    # an article written into the bucket after the alert fired, scoring higher than any: a page that read the
    # bucket again would show it first
    store.write(Batch(tagged=[tagged("late", HOUR + timedelta(minutes=30), score=0.99)]))
    (stored,) = store.query("SELECT evidence FROM alert_details WHERE alert_id = 'surge'").rows[0]
    expected = [item["id"] for item in json.loads(stored)["articles"]]
    assert expected == ["e2", "e1", "e0"]
    shown = overview(store.connection, Range(7, "1h"), DYNAMICS, ()).alerts
    assert [_ids(item.evidence) for item in shown] == [expected]
    assert shown[0].evidence[0] == Evidence(
        "e2", "article e2", "https://x.test/e2", "wire", HOUR + timedelta(minutes=2)
    )
    assert _ids(dynamic_detail(store.connection, "capex", Range(7, "1h")).alerts[0].evidence) == expected
    detail = article_detail(store.connection, "e0", HOUR.date())
    assert detail is not None
    assert [_ids(item.evidence) for item in detail.alerts] == [expected]


def test_an_entity_alert_shows_the_stored_articles_naming_its_entities(store: Store) -> None:
    store.write(
        Batch(
            tagged=[
                tagged("both", HOUR + timedelta(minutes=1), title="NVIDIA and AMD share a rack", score=0.6),
                tagged("one", HOUR + timedelta(minutes=2), title="NVIDIA alone", score=0.9),
                tagged("none", HOUR + timedelta(minutes=3), title="Nobody named", score=0.95),
            ]
        )
    )
    store.write(Batch(alerts=[alert("pair", HOUR, {"entities": "AMD & NVIDIA"})]))
    (shown,) = overview(store.connection, Range(7, "1h"), DYNAMICS, ()).alerts
    assert _ids(shown.evidence) == ["both"]


def test_evidence_stored_without_ids_or_broken_is_shown_as_far_as_it_can_be_read(store: Store) -> None:
    store.write(Batch(tagged=[tagged("e0", HOUR)], alerts=[alert("old", HOUR)]))
    before_ids = {"articles": [{"title": "T", "url": "https://x.test/t", "source": "wire", "published_at": "bad"}]}
    store.connection.execute("UPDATE alert_details SET evidence = ? WHERE alert_id = 'old'", [json.dumps(before_ids)])
    (shown,) = overview(store.connection, Range(7, "1h"), DYNAMICS, ()).alerts
    assert shown.evidence == (Evidence(None, "T", "https://x.test/t", "wire", None),)
    for broken in ("{not json", "[]", '{"articles": 3}', '{"articles": [1, null]}'):
        store.connection.execute("UPDATE alert_details SET evidence = ? WHERE alert_id = 'old'", [broken])
        assert overview(store.connection, Range(7, "1h"), DYNAMICS, ()).alerts[0].evidence == ()


def test_evidence_links_to_the_article_on_its_day_or_else_to_its_own_url() -> None:
    macros = build_environment().from_string('{% import "_macros.html" as m with context %}{{ m.alerts(rows) }}')
    at = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
    view = overview_alert(
        (
            Evidence("a/1", "stored", "https://x.test/1", "wire", at),
            Evidence(None, "older", "https://x.test/2", "", None),
        )
    )
    page = macros.render(rows=[view], rq="?days=7&width=1h")
    assert 'href="/dashboard/article/a%2F1?days=7&amp;width=1h&amp;day=2026-03-02"' in page
    assert '<a class="ext" href="https://x.test/2" rel="noopener noreferrer nofollow">older</a>' in page


def overview_alert(evidence: tuple[Evidence, ...]) -> AlertView:
    return AlertView("a", "rule", "spike", "warning", "capex", "1h", HOUR, 2.0, 1.0, "m", HOUR, "firing", (), evidence)


# -- the overview lists what falls in its range --------------------------------------------------------------------


def test_the_overview_lists_only_the_alerts_and_articles_of_its_range(store: Store) -> None:
    recent, old = NOW - timedelta(days=2), NOW - timedelta(days=40)
    store.write(
        Batch(
            tagged=[tagged("new", recent), tagged("old", old)],
            alerts=[alert("a-new", recent, width="1d"), alert("a-old", old, width="1d")],
        )
    )
    week, quarter = (
        overview(store.connection, Range(7, "1d"), DYNAMICS, ()),
        overview(store.connection, Range(90, "1d"), DYNAMICS, ()),
    )
    assert (_ids(week.alerts), _ids(week.articles)) == (["a-new"], ["new"])
    assert (_ids(quarter.alerts), _ids(quarter.articles)) == (["a-new", "a-old"], ["new", "old"])
    assert [(source.name, source.articles) for source in week.sources] == [("wire", 1)]
    assert week.totals["articles"] == 2  # the totals are the store's


def test_the_newest_articles_are_the_same_whichever_window_holds_them(store: Store) -> None:
    # 20 articles today and 10 from three weeks ago: the overview's 25 newest need both windows
    today = [tagged(f"t{i:02d}", NOW - timedelta(minutes=10 * i)) for i in range(20)]
    older = [tagged(f"o{i:02d}", NOW - timedelta(days=21, minutes=10 * i)) for i in range(10)]
    store.write(Batch(tagged=today + older))
    listed = overview(store.connection, Range(30, "1d"), DYNAMICS, ()).articles
    assert len(listed) == RECENT_ARTICLES
    assert _ids(listed) == [f"t{i:02d}" for i in range(20)] + [f"o{i:02d}" for i in range(5)]
    assert [row.scores for row in listed[:1]] == [(("capex", 0.9),)]


def _words(number: int) -> str:
    """A text no other number's text is a near duplicate of."""
    vocabulary = [f"w{number}x{k}" for k in range(12)]
    return " ".join(vocabulary)


def test_stories_are_listed_by_when_they_were_last_seen_even_when_their_labelled_article_is_older(
    store: Store,
) -> None:
    # a story whose capex article is two days old and whose newest (unlabelled) copy is from a minute ago, among
    # enough stories of the last day to fill the list: it is seen last, so it comes first
    fresh = [
        tagged(f"s{i:02d}", NOW - timedelta(hours=1, minutes=i), title=_words(i), summary=_words(i))
        for i in range(STORIES)
    ]
    copy = _words(99)
    store.write(Batch(tagged=[*fresh, tagged("first", NOW - timedelta(days=2), title=copy, summary=copy)]))
    store.write(Batch(tagged=[tagged("copy", NOW - timedelta(minutes=1), (), title=copy, summary=copy)]))
    stories = dynamic_detail(store.connection, "capex", Range(7, "1d")).stories
    assert len(stories) == STORIES
    assert stories[0].story_id == "first"
    assert stories[0].articles == 2
    assert [story.story_id for story in stories[1:]] == [f"s{i:02d}" for i in range(STORIES - 1)]


# -- an article is found on the day its link names -------------------------------------------------------------------


def test_an_article_is_found_on_its_day_without_a_day_and_with_a_wrong_one(store: Store) -> None:
    at = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    store.write(Batch(tagged=[tagged("x", at, title="NVIDIA ships"), tagged("y", at + timedelta(hours=1))]))
    found = [article_detail(store.connection, "x", day) for day in (date(2026, 3, 2), None, date(2020, 1, 1))]
    assert all(detail is not None for detail in found)
    assert len({detail for detail in found}) == 1  # the same page whichever way it was asked for
    detail = found[0]
    assert detail is not None
    assert (detail.article.id, detail.article.published_at, detail.entities) == ("x", at, (ArticleEntity("NVIDIA", 1),))
    assert detail.article.scores == (("capex", 0.9),)
    assert detail.story is not None
    assert detail.story.first_seen == at
    assert article_detail(store.connection, "missing", date(2026, 3, 2)) is None
    assert article_detail(store.connection, "missing") is None


@pytest.mark.parametrize(
    ("query", "day"),
    [({"day": "2026-03-02"}, date(2026, 3, 2)), ({}, None), ({"day": "2026-02-30"}, None), ({"day": "x"}, None)],
)
def test_an_article_links_day_is_read_when_it_can_be_and_ignored_when_not(query: dict[str, str], day: date) -> None:
    assert published_day(query) == day


def test_every_article_link_names_the_day_it_was_published_on() -> None:
    environment = build_environment()
    at = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
    link = environment.from_string('{% import "_macros.html" as m with context %}{{ m.article_href(key, at) }}')
    assert (
        link.render(key="a/b", at=at, rq="?days=7&width=1h")
        == "/dashboard/article/a%2Fb?days=7&amp;width=1h&amp;day=2026-03-02"
    )
    assert link.render(key="a", at=at, rq="") == "/dashboard/article/a?day=2026-03-02"
    for template in ("overview.html", "dynamic.html", "entity.html", "article.html", "search.html"):
        source = environment.loader.get_source(environment, template)[0]  # type: ignore[union-attr]
        assert not re.search(r'href="/dashboard/article/', source), template  # every one goes through article_href


# -- a search counts up to a cap -------------------------------------------------------------------------------------


def test_a_search_counts_its_matches_up_to_the_cap_and_says_there_are_more(store: Store) -> None:
    store.write(Batch(tagged=[tagged(f"m{i}", NOW - timedelta(days=3 * i), title="GPU deal") for i in range(8)]))
    capped = search_articles(store.connection, SearchFilters(q="gpu"), 3, cap=5)
    assert (capped.total, capped.more, _ids(capped.articles)) == (5, True, ["m0", "m1", "m2"])
    exact = search_articles(store.connection, SearchFilters(q="gpu"), 3, cap=8)
    assert (exact.total, exact.more) == (8, False)
    assert COUNT_CAP == 1000
    assert search_articles(store.connection, SearchFilters(q="gpu"), 3).total == 8


def test_a_search_pages_through_matches_spread_over_years_newest_first(store: Store) -> None:
    ages = [0, 2, 10, 40, 200, 900, 1400]  # days: articles in each window the search widens through
    store.write(Batch(tagged=[tagged(f"d{age}", NOW - timedelta(days=age), title="Stargate") for age in ages]))
    pages = [search_articles(store.connection, SearchFilters(q="stargate"), 2, offset) for offset in (0, 2, 4, 6)]
    assert [_ids(page.articles) for page in pages] == [["d0", "d2"], ["d10", "d40"], ["d200", "d900"], ["d1400"]]
    assert {(page.total, page.more) for page in pages} == {(7, False)}
    until = search_articles(store.connection, SearchFilters(q="stargate", until=NOW - timedelta(days=30)), 50)
    assert (_ids(until.articles), until.total) == (["d40", "d200", "d900", "d1400"], 4)
    since = SearchFilters(q="stargate", since=NOW - timedelta(days=100), until=NOW - timedelta(days=1))
    assert _ids(search_articles(store.connection, since, 50).articles) == ["d2", "d10", "d40"]
    filtered = search_articles(store.connection, SearchFilters(dynamic="capex", source="WIRE"), 50, cap=3)
    assert (filtered.total, filtered.more, len(filtered.articles)) == (7, False, 7)  # the page needs 50


def test_a_search_orders_the_same_whether_it_counted_every_match_or_stopped_at_the_cap(store: Store) -> None:
    at = NOW - timedelta(days=400)
    store.write(Batch(tagged=[tagged(key, at, title="Same minute") for key in ("b", "c", "a")]))
    store.write(Batch(tagged=[tagged("z", at - timedelta(minutes=1), title="Same minute")]))
    every = search_articles(store.connection, SearchFilters(q="same"), 4, cap=10)
    assert (every.total, every.more, _ids(every.articles)) == (4, False, ["a", "b", "c", "z"])
    # one a page with a cap of 1: the first pages stop counting at the cap and read their page again in SQL, the
    # last has every match in hand
    pages = [search_articles(store.connection, SearchFilters(q="same"), 1, offset, cap=1) for offset in range(4)]
    assert [page.more for page in pages] == [True, True, True, False]
    assert [_ids(page.articles) for page in pages] == [["a"], ["b"], ["c"], ["z"]]
