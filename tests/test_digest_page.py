"""The dashboard's digest page, served by a real sink runtime's web app on 127.0.0.1 over the fixed store.

The runtime is built and not started; its store thread is given the fixed store (:mod:`tests.helpers.digest_store`)
opened read-only, as the sink would hold it.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from stackwatch.settings import settings_from_mapping
from tests.helpers.digest_store import HOSTILE_TITLE, UNTIL, fill_digest_store
from tests.helpers.web_app import served_web

DAY = f"/dashboard/digest?since=1d&until={quote(UNTIL)}"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    """The web app of a sink runtime whose store thread holds the fixed store, on a free port of 127.0.0.1."""
    path = fill_digest_store(tmp_path / "stackwatch.duckdb")
    settings = settings_from_mapping({"storage": {"path": str(path)}}, environ={})
    async with served_web(settings, store=path) as base:
        yield base


async def test_the_page_shows_each_dynamic_with_its_counts_stories_entities_and_the_alerts(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        answer = await client.get(DAY)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    page = answer.text
    assert "<h1>Digest: all dynamics</h1>" in page
    assert "2026-03-09 00:00 to 2026-03-10 00:00 UTC (1d), compared with the 1d before." in page
    for dynamic in ("exclusivity", "capex", "decoupling", "edge"):
        assert f'<a href="/dashboard/dynamic/{dynamic}">{dynamic}</a>' in page
    assert "Articles: 4 (+2 from 2). Stories: 2 (same as before)." in page
    assert '<a href="/dashboard/article/a1?day=2026-03-09">Anthropic commits to a million Google TPUs</a>' in page
    assert '<a href="/dashboard/entity/Anthropic">Anthropic</a>' in page
    assert "decoupling-spike" in page
    assert "capex &lt;!here&gt;" in page


async def test_feed_text_on_the_page_is_escaped_and_links_stay_in_their_attribute(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        page = (await client.get(DAY)).text
    assert "<script>" not in page
    assert html.escape(HOSTILE_TITLE) in page
    assert 'href="/dashboard/entity/Humain%20%3C%40U1%3E%20%40here"' in page  # an entity name is one path segment
    assert 'href="https://news.example/humain_(1)?a=1&amp;b=&lt;2&gt;"' in page  # escaped in its attribute


async def test_one_dynamic_named_in_any_case_gets_its_section_and_its_alerts_only(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        page = (await client.get(DAY + "&dynamic=DECOUPLING")).text
    assert "<h1>Digest: decoupling</h1>" in page
    assert "/dashboard/dynamic/capex" not in page
    assert "capex &lt;!here&gt;" not in page
    assert "decoupling-spike" in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?since=soon", "since: expected a duration"),
        ("?until=tomorrow", "until: expected an ISO 8601 date or time"),
        ("?dynamic=%3Cb%3Esovereignty", "unknown dynamic &#39;&lt;b&gt;sovereignty&#39;"),
    ],
)
async def test_a_value_the_page_cannot_read_is_a_400_naming_it(served: str, query: str, message: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        answer = await client.get("/dashboard/digest" + query)
    assert answer.status_code == 400
    assert message in answer.text


async def test_every_link_to_another_page_carries_the_range_the_address_names(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        page = (await client.get(DAY + "&days=30&width=1d")).text
    links = [html.unescape(href) for href in re.findall(r'href="(/dashboard/[^"]*)"', page)]
    links = [link for link in links if not link.startswith("/dashboard/static/")]
    assert len(links) > 10
    for link in links:
        assert parse_qs(urlsplit(link).query).get("days") == ["30"], link
    assert "/dashboard/article/a1?days=30&width=1d&day=2026-03-09" in links
    assert "/dashboard/digest?since=1d&dynamic=decoupling&days=30&width=1d" in links


async def test_a_process_without_the_store_answers_with_its_503_page(tmp_path: Path) -> None:
    settings = settings_from_mapping({"storage": {"path": str(tmp_path / "s.duckdb")}}, environ={})
    async with served_web(settings) as base, httpx.AsyncClient(base_url=base) as client:
        answer = await client.get("/dashboard/digest")
    assert answer.status_code == 503
    assert "this process does not hold the store" in answer.text
