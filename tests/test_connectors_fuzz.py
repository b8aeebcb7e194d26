"""Arbitrary bytes at every parser: each returns articles and rejects or raises ParseError; nothing else, no hang."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackwatch.connectors.detect import parse_document
from stackwatch.connectors.edgar import parse_edgar
from stackwatch.connectors.gdelt import gdelt_items
from stackwatch.connectors.hackernews import hn_items
from stackwatch.connectors.json_source import parse_json
from stackwatch.connectors.jsonapi import JsonMapping
from stackwatch.connectors.jsonfeed import json_feed_items
from stackwatch.connectors.rss import parse_feed
from stackwatch.errors import ParseError
from stackwatch.signals.messages import Article, DeadLetter

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
FEEDS = Path(__file__).parent / "data" / "feeds"
SEEDS = [path.read_bytes() for path in sorted(FEEDS.iterdir())]

Parser = Callable[[bytes], tuple[list[Article], list[DeadLetter]]]
PARSERS: dict[str, Parser] = {
    "rss": lambda data: parse_feed(data, "fuzz", NOW),
    "sec_edgar": lambda data: parse_edgar(data, "fuzz", NOW),
    "jsonfeed": lambda data: parse_json(data, json_feed_items, "fuzz", "jsonfeed", NOW),
    "hackernews": lambda data: parse_json(data, hn_items, "fuzz", "hackernews", NOW),
    "gdelt": lambda data: parse_json(data, gdelt_items, "fuzz", "gdelt", NOW),
    "http_json": lambda data: parse_json(data, JsonMapping(items="items").find, "fuzz", "http_json", NOW),
    "auto": lambda data: parse_document(data, "fuzz", NOW),
}


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """Pure noise, or a real document cut, spliced and sprinkled with noise (closer to what breaks parsers)."""
    noise = draw(st.binary(max_size=2048))
    if draw(st.booleans()):
        return noise
    seed = draw(st.sampled_from(SEEDS))
    cut = draw(st.integers(0, len(seed)))
    return seed[:cut] + noise + seed[cut + draw(st.integers(0, 64)) :]


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(data=documents())
def test_no_crash_on_arbitrary_bytes(kind: str, data: bytes) -> None:
    articles: list[Article] = []
    rejected: list[DeadLetter] = []
    reason = None
    try:
        articles, rejected = PARSERS[kind](data)
    except ParseError as error:
        reason = str(error)
    assert reason is None or reason  # a refusal always says why
    for article in articles:
        assert article.id
        assert article.title or article.summary or article.body
    for letter in rejected:
        assert letter.reason
