"""Parsers, the source registry and per-host politeness: pure unit tests on plain values."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackwatch.connectors import SOURCE_TYPES, build_source
from stackwatch.connectors.detect import parse_document
from stackwatch.connectors.edgar import parse_edgar
from stackwatch.connectors.gdelt import gdelt_items
from stackwatch.connectors.hackernews import hn_items
from stackwatch.connectors.http import retry_after
from stackwatch.connectors.json_source import parse_json
from stackwatch.connectors.jsonapi import JsonMapping
from stackwatch.connectors.jsonfeed import json_feed_items
from stackwatch.connectors.politeness import HostLimiter
from stackwatch.connectors.rss import parse_feed
from stackwatch.connectors.scheduler import Schedule
from stackwatch.errors import ParseError
from stackwatch.settings import settings_from_mapping
from stackwatch.signals.ids import article_id

FEEDS = Path(__file__).parent / "data" / "feeds"
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def read(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def test_every_registered_source_type_is_documented() -> None:
    undocumented = [name for name, factory in SOURCE_TYPES.items() if not (factory.__doc__ or "").strip()]
    assert undocumented == []


def test_every_registered_type_has_settings_and_builds() -> None:
    examples = {
        "rss": {"url": "https://x.example/feed"},
        "jsonfeed": {"url": "https://x.example/feed.json"},
        "http_json": {"url": "https://x.example/api", "items": "data.items"},
        "hackernews": {"query": "TPU"},
        "sec_edgar": {"cik": "0001045810", "user_agent": "Acme Research ops@acme.example"},
        "gdelt": {"query": "capex"},
        "file": {"path": "articles.jsonl"},
        "demo": {},
    }
    assert set(examples) == set(SOURCE_TYPES)
    settings = settings_from_mapping(
        {"sources": [{"name": f"s-{kind}", "type": kind, **extra} for kind, extra in examples.items()]}
    )
    for entry in settings.sources:
        source, schedule = build_source(entry)
        assert source.type == entry.type
        assert schedule.interval > 0


def test_edgar_settings_require_a_contact_user_agent() -> None:
    from stackwatch.errors import ConfigError

    with pytest.raises(ConfigError, match="user_agent"):
        settings_from_mapping({"sources": [{"name": "nv", "type": "sec_edgar", "cik": "1045810"}]})
    with pytest.raises(ConfigError, match="contact e-mail"):
        settings_from_mapping({"sources": [{"name": "nv", "type": "sec_edgar", "cik": "1045810", "user_agent": "bot"}]})


def test_rss_with_namespaces() -> None:
    articles, rejected = parse_feed(read("rss2_namespaces.xml"), "wire", NOW)
    assert rejected == []
    assert [a.title for a in articles] == [
        "Meta signs multi-billion TPU deal with Google Cloud",
        "Microsoft raises capex guidance to $80bn",
        "Trainium 3 ships to Anthropic",
    ]
    first = articles[0]
    assert first.id == article_id("wire", "chipwire-10231", None)
    assert first.summary == "Meta will rent TPUs from Google Cloud & buy more."
    assert first.body is not None
    assert "several years" in first.body
    assert first.published_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert first.language == "en-us"
    assert {a.connector for a in articles} == {"rss"}
    # no guid: the id comes from the canonical URL
    assert articles[2].id == article_id("wire", None, "https://chipwire.example/2026/04/trainium3")


def test_atom_with_xhtml_content() -> None:
    articles, _ = parse_feed(read("atom_xhtml.xml"), "newsroom", NOW)
    assert articles[0].title == "AMD & Oracle expand MI450 cluster"
    assert articles[0].summary == "Oracle will deploy 50,000 AMD GPUs."
    assert articles[1].summary == "A multi-year capacity deal."
    assert articles[1].published_at == datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


def test_rdf_in_latin1() -> None:
    articles, _ = parse_feed(read("rdf.xml"), "trade", NOW)
    assert articles[0].title == "Nvidia café talk: Blackwell supply eases"
    assert articles[1].published_at == datetime(2026, 4, 27, 7, 0, tzinfo=UTC)


def test_json_feed() -> None:
    articles, rejected = parse_json(read("jsonfeed.json"), json_feed_items, "silicon", "jsonfeed", NOW)
    assert rejected == []
    assert articles[0].summary == "A 6 GW agreement."
    assert articles[1].url == "https://other.example/story"
    assert articles[1].language == "en-GB"
    assert articles[1].published_at == datetime(2026, 5, 2, 7, 0, tzinfo=UTC)
    assert articles[2].published_at == NOW  # no date: the fetch time
    assert {a.connector for a in articles} == {"jsonfeed"}


def test_hacker_news_answer() -> None:
    articles, _ = parse_json(read("hn.json"), hn_items, "hn", "hackernews", NOW)
    assert articles[0].url == "https://news.example/tpu-meta"
    assert articles[1].url == "https://news.ycombinator.com/item?id=41000000"
    assert articles[1].summary == "Curious about experiences."
    assert articles[0].published_at == datetime(2026, 5, 3, 10, 0, tzinfo=UTC)


def test_gdelt_answer() -> None:
    articles, _ = parse_json(read("gdelt.json"), gdelt_items, "gdelt", "gdelt", NOW)
    assert [a.language for a in articles] == ["en", "de"]
    assert articles[0].published_at == datetime(2026, 5, 1, 12, 15, tzinfo=UTC)
    no_matches = parse_json(b"{}", gdelt_items, "gdelt", "gdelt", NOW)  # GDELT's answer to a query with no matches
    assert no_matches == ([], [])


def test_edgar_atom_titles_carry_the_company() -> None:
    articles, _ = parse_edgar(read("edgar.xml"), "nvidia-8k", NOW)
    assert [a.title for a in articles] == ["NVIDIA CORP: 8-K - Current report"] * 2
    assert articles[0].id == article_id("nvidia-8k", "urn:tag:sec.gov,2008:accession-number=0001045810-26-000071", None)
    assert articles[0].connector == "sec_edgar"
    assert articles[0].published_at == datetime(2026, 5, 1, 20, 5, 22, tzinfo=UTC)


def test_http_json_mapping() -> None:
    body = b"""{"data": {"posts": [
        {"headline": "Oracle signs OpenAI", "link": "https://api.example/1", "ts": 1777802400, "teaser": "t"},
        {"headline": "Bad time keeps the item", "link": "https://api.example/2", "ts": "yesterday-ish"},
        "not an object",
        {"teaser": ""}
    ]}}"""
    mapping = JsonMapping(items="data.posts", title="headline", url="link", published="ts", summary="teaser", id="")
    articles, rejected = parse_json(body, mapping.find, "api", "http_json", NOW)
    assert [a.title for a in articles] == ["Oracle signs OpenAI", "Bad time keeps the item"]
    assert articles[0].published_at == datetime(2026, 5, 3, 10, 0, tzinfo=UTC)
    assert articles[1].published_at == NOW
    assert [r.reason for r in rejected] == [
        "item 2 rejected: expected an object, got str",
        "item 3 rejected: record has neither a title nor a summary/text",
    ]
    with pytest.raises(ParseError, match=r"no list of items at 'data\.missing'"):
        parse_json(body, JsonMapping(items="data.missing").find, "api", "http_json", NOW)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("broken_truncated.xml", "malformed feed"),
        ("broken_html.html", "the document is HTML"),
        ("broken_json.json", "not JSON: Unterminated string"),
        ("broken_encoding.json", "not valid UTF-8 at byte"),
        ("broken_shape.json", "JSON of no known shape"),
    ],
)
def test_malformed_documents_are_rejected_with_their_reason(name: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_document(read(name), "broken", NOW)


def test_entries_without_title_or_link_become_dead_letters() -> None:
    articles, rejected = parse_feed(read("broken_entries.xml"), "odd", NOW)
    assert [a.title for a in articles] == ["A fine entry"]
    assert [r.reason for r in rejected] == [
        "entry rejected: entry has no title, summary or content",
        "entry rejected: an article needs a guid or a url to have an id",
    ]
    assert all(r.origin == "odd" and r.payload for r in rejected)


def test_html_served_as_json_is_named() -> None:
    with pytest.raises(ParseError, match="HTML"):
        parse_json(read("broken_html.html"), hn_items, "hn", "hackernews", NOW)


def test_retry_after_values() -> None:
    assert retry_after("120") == 120.0
    assert retry_after(None) == 60.0
    assert retry_after("soon") == 60.0
    assert retry_after("99999999") == 6 * 3600
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a past date: now


def test_backoff_doubles_per_failure_up_to_its_cap_however_long_a_source_fails() -> None:
    schedule = Schedule(interval=300.0, max_backoff=3600.0)
    assert [schedule.backoff(n) for n in (1, 2, 3, 4, 5)] == [300.0, 600.0, 1200.0, 2400.0, 3600.0]
    assert schedule.backoff(5_000) == 3600.0  # weeks of failures: still the cap, not an overflow


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_host_limiter_spaces_requests_to_one_host() -> None:
    clock = FakeClock()
    limiter = HostLimiter(concurrency=4, min_gap=2.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        async with limiter.slot("www.sec.gov"):
            pass
    async with limiter.slot("hn.algolia.com"):
        pass  # another host: no wait
    async with limiter.slot(None):
        pass  # local sources: no wait
    assert clock.sleeps == [2.0, 2.0]


async def test_host_limiter_bounds_concurrency_per_host() -> None:
    limiter = HostLimiter(concurrency=2, min_gap=0.0)
    in_flight = 0
    most = 0
    release = asyncio.Event()

    async def request() -> None:
        nonlocal in_flight, most
        async with limiter.slot("example.org"):
            in_flight += 1
            most = max(most, in_flight)
            await release.wait()
            in_flight -= 1

    tasks = [asyncio.create_task(request()) for _ in range(5)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert in_flight == 2
    release.set()
    await asyncio.gather(*tasks)
    assert most == 2
