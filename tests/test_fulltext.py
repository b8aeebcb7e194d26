"""Optional full text: article pages fetched from a real local server, main text extracted, limits kept."""

from __future__ import annotations

from datetime import UTC, datetime

from stackwatch.connectors import build_source
from stackwatch.connectors.fulltext import FullTextFetcher
from stackwatch.settings import settings_from_mapping
from stackwatch.signals.messages import Article
from tests.helpers.http import LocalServer

NOW = datetime(2026, 5, 4, 12, tzinfo=UTC)
PAGE = """<!doctype html><html><head><title>Meta and Google sign TPU deal</title></head><body>
<nav><a href="/">Home</a> | <a href="/markets">Markets</a> | Subscribe now</nav>
<article><h1>Meta signs multibillion-dollar deal to rent Google TPUs</h1>
<p>Meta Platforms has agreed to rent tensor processing units from Google Cloud starting next year, people
familiar with the matter said, in a deal worth several billion dollars that would reduce its reliance on
Nvidia's graphics processors for training and serving its Llama models.</p>
<p>The agreement, which could be followed by direct purchases of TPUs for Meta's own data centres from 2027,
marks the largest outside commitment yet to Google's custom silicon, analysts said on Tuesday.</p>
</article><footer>Copyright 2026. All rights reserved. Cookie settings.</footer></body></html>"""


def article(url: str, body: str | None = None) -> Article:
    return Article(id=url, url=url, title="t", summary="s", source="wire", connector="rss",
                   published_at=NOW, fetched_at=NOW, body=body)  # fmt: skip


async def test_pages_become_bodies_and_failures_keep_the_article(http_server: LocalServer) -> None:
    http_server.route("/story", PAGE, headers={"Content-Type": "text/html"})
    http_server.route("/huge", "<p>" + "x" * 50_000 + "</p>", headers={"Content-Type": "text/html"})
    http_server.route("/gone", "not here", status=404)
    fetcher = FullTextFetcher(max_bytes=20_000, timeout=5.0, concurrency=2)
    try:
        story, huge, gone, kept, local = await fetcher.enrich([
            article(http_server.url("/story")), article(http_server.url("/huge")), article(http_server.url("/gone")),
            article(http_server.url("/story"), body="already had one"), article("file:///etc/passwd"),
        ])  # fmt: skip
    finally:
        await fetcher.close()
    assert story.body is not None
    assert "rent tensor processing units from Google Cloud" in story.body
    assert "Cookie settings" not in story.body  # boilerplate is not article text
    assert huge.body is None  # over the size limit: skipped, the article itself kept
    assert gone.body is None
    assert kept.body == "already had one"
    assert local.body is None  # only http(s) pages are fetched
    assert len(http_server.received("/story")) == 1


def test_a_source_with_full_text_gets_a_fetcher_with_its_limits() -> None:
    settings = settings_from_mapping(
        {"sources": [{"name": "wire", "type": "rss", "url": "http://127.0.0.1:9/feed.xml",
                      "full_text": {"max_bytes": 4096, "timeout": "3s", "concurrency": 1}}]},
        environ={},
    )  # fmt: skip
    source, _ = build_source(settings.sources[0])
    assert source.full_text is not None
    assert source.full_text.max_bytes == 4096
