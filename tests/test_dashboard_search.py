"""The dashboard's article search: what the store matches (a real DuckDB file) and how the form's fields are read.

The text is matched literally: ``%``, ``_``, quotes, backslashes, markup, NUL and very long strings are plain
characters, never a pattern or SQL. The pages that show the results are tested on a running service in
tests/test_dashboard.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stackwatch.pipeline.web.dashboard.search import MAX_PAGE, SearchForm, check_form
from stackwatch.signals.entities import Entity, Gazetteer
from stackwatch.signals.messages import Article, TaggedArticle
from stackwatch.storage.dashboard import SearchFilters, search_articles
from stackwatch.storage.derive import Derivation
from stackwatch.storage.store import Batch, Store

DAY = datetime(2026, 3, 2, 12, tzinfo=UTC)
ODD = "AT&T / Ünïcode 100% Labs"
DYNAMICS = ("exclusivity", "capex", "decoupling", "edge", "gpu_leasing_2")

ARTICLES = [
    # id, days after DAY, source, labels, title, summary
    ("pct", 0, "wire", ("capex",), "Capex up 100% at Oracle", "spending doubles"),
    ("under", 1, "wire", ("capex",), "snake_case names in a filing", "plain"),
    ("quote", 2, "Blog", ("edge",), 'It\'s the "edge" moment', "O'Brien says"),
    ("slash", 3, "blog", ("edge",), "A path a\\b in a title", "backslash"),
    ("markup", 4, "wire", ("decoupling",), "<script>alert(1)</script> TPU deal", "markup in a title"),
    ("nul", 5, "wire", ("decoupling",), "a NUL \x00 inside", "control character"),
    ("odd", 6, "wire", ("gpu_leasing_2",), "Unicode Labs leases GPUs", "an entity with an awkward name"),
    ("plain", 7, "Wire", (), "Nothing special", "an ordinary day with 100 percent and underscores absent"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    gazetteer = Gazetteer([Entity(ODD, ("unicode labs",)), Entity("Oracle", ("oracle",))])
    path = tmp_path_factory.mktemp("search") / "stackwatch.duckdb"
    with Store.open(path, derivation=Derivation(gazetteer=gazetteer)) as opened:
        tagged = []
        for key, offset, source, labels, title, summary in ARTICLES:
            at = DAY + timedelta(days=offset)
            article = Article(key, f"https://x.test/{key}", title, summary, source, "rss", at, at)
            tagged.append(TaggedArticle(article, labels, dict.fromkeys(labels, 0.9), "v1", at))
        opened.write(Batch(tagged=tagged))
        yield opened


def found(store: Store, limit: int = 50, offset: int = 0, **filters: Any) -> list[str]:
    return [row.id for row in search_articles(store.connection, SearchFilters(**filters), limit, offset).articles]


# -- what the store matches -------------------------------------------------------------------------------------------


def test_no_filter_lists_every_stored_article_newest_first(store: Store) -> None:
    result = search_articles(store.connection, SearchFilters(), 3)
    assert result.total == len(ARTICLES)
    assert [row.id for row in result.articles] == ["plain", "odd", "nul"]
    assert found(store, limit=3, offset=3) == ["markup", "slash", "quote"]


def test_text_matches_title_or_summary_in_any_case(store: Store) -> None:
    assert found(store, q="ORACLE") == ["pct"]
    assert found(store, q="doubles") == ["pct"]
    assert found(store, q="unicode LABS") == ["odd"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("%", ["pct"]),  # not LIKE's "anything"
        ("100%", ["pct"]),
        ("_", ["under"]),  # not LIKE's "any one character"
        ("e_c", ["under"]),
        ("'", ["quote"]),
        ('"edge"', ["quote"]),
        ("' OR '1'='1", []),
        ("'; DROP TABLE articles; --", []),
        ("\\", ["slash"]),
        ("<script>", ["markup"]),
        ("\x00", ["nul"]),
        ("x" * 20_000, []),
        ("é", []),
    ],
)
def test_text_is_matched_literally_whatever_it_holds(store: Store, q: str, expected: list[str]) -> None:
    assert found(store, q=q) == expected
    assert store.count("articles") == len(ARTICLES)


def test_filters_narrow_the_search_and_combine(store: Store) -> None:
    assert found(store, dynamic="edge") == ["slash", "quote"]
    assert found(store, dynamic="gpu_leasing_2") == ["odd"]
    assert found(store, entity=ODD) == ["odd"]
    assert found(store, entity="Oracle") == ["pct"]
    assert found(store, source="WIRE") == ["plain", "odd", "nul", "markup", "under", "pct"]  # any case
    assert found(store, source="blog") == ["slash", "quote"]
    assert found(store, since=DAY + timedelta(days=6)) == ["plain", "odd"]
    assert found(store, until=DAY + timedelta(days=1)) == ["pct"]
    assert found(store, q="a", source="wire", dynamic="decoupling", since=DAY + timedelta(days=5)) == ["nul"]
    assert found(store, dynamic="capex", source="blog") == []


def test_the_total_counts_every_match_beyond_the_page(store: Store) -> None:
    result = search_articles(store.connection, SearchFilters(source="wire"), 2, 2)
    assert result.total == 6
    assert [row.id for row in result.articles] == ["nul", "markup"]


# -- how the form is read ---------------------------------------------------------------------------------------------


def test_an_empty_form_means_no_filter() -> None:
    form, filters, errors = check_form({}, DYNAMICS)
    assert (form, filters, errors) == (SearchForm(), SearchFilters(), [])


def test_the_form_means_whole_utc_days_any_case_dynamics_and_the_text_as_typed() -> None:
    query = {"q": "  100%_'<b>\x00 ", "dynamic": "GPU_Leasing_2", "entity": "nvidia", "source": "Wire",
             "since": "2026-03-02", "until": "2026-03-04", "page": "3"}  # fmt: skip
    form, filters, errors = check_form(query, DYNAMICS)
    assert errors == []
    assert form.page == 3
    assert filters == SearchFilters(
        q="  100%_'<b>\x00 ",
        dynamic="gpu_leasing_2",
        entity="nvidia",  # the page resolves it against the gazetteer and the store
        source="Wire",
        since=datetime(2026, 3, 2, tzinfo=UTC),
        until=datetime(2026, 3, 5, tzinfo=UTC),  # the whole of the 4th
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "yesterday"}, "since: expected a date as YYYY-MM-DD, got 'yesterday'"),
        ({"until": "2026-02-30"}, "until: expected a date as YYYY-MM-DD, got '2026-02-30'"),
        ({"since": "20260301"}, "since: expected a date as YYYY-MM-DD, got '20260301'"),
        ({"since": "2026-W10-1"}, "since: expected a date as YYYY-MM-DD, got '2026-W10-1'"),
        ({"since": "２０２６-03-01"}, "since: expected a date as YYYY-MM-DD, got '２０２６-03-01'"),
        ({"since": "2026-03-05", "until": "2026-03-01"}, "until: 2026-03-01 is before since (2026-03-05)"),
        ({"dynamic": "weather"}, "dynamic: unknown dynamic 'weather' (known: exclusivity, capex, decoupling, edge, "),
        ({"dynamic": "<script>"}, "dynamic: unknown dynamic '<script>'"),
        ({"page": "0"}, f"page: expected a whole number from 1 to {MAX_PAGE}, got '0'"),
        ({"page": "x"}, f"page: expected a whole number from 1 to {MAX_PAGE}, got 'x'"),
        (
            {"since": "x" * 10_000},
            "since: expected a date as YYYY-MM-DD, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'…",
        ),
        ({"since": "\x00"}, "since: expected a date as YYYY-MM-DD, got '\\x00'"),
    ],
)
def test_a_field_that_cannot_be_read_is_a_message_naming_it(query: dict[str, str], message: str) -> None:
    _, _, errors = check_form(query, DYNAMICS)
    assert len(errors) == 1
    assert errors[0].startswith(message)
    assert len(errors[0]) < 200


def test_every_bad_field_gets_its_message_at_once() -> None:
    _, _, errors = check_form({"since": "soon", "until": "later", "dynamic": "x", "page": "-1"}, DYNAMICS)
    assert [error.split(":")[0] for error in errors] == ["page", "dynamic", "since", "until"]


def test_the_last_day_there_is_leaves_the_search_open_ended() -> None:
    _, filters, errors = check_form({"until": "9999-12-31"}, DYNAMICS)
    assert errors == []
    assert filters.until is None
