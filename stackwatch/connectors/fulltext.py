"""Optional full text: fetch each new article's page and extract its main text with trafilatura.

    fetcher = FullTextFetcher(max_bytes=2_000_000, timeout=15.0, concurrency=2)
    articles = await fetcher.enrich(articles)        # each article's ``body``, where a page could be read
    await fetcher.close()

A page that cannot be fetched or read leaves its article without a body (logged, never dropped). trafilatura is
an extra: ``pip install 'stackwatch[fulltext]'``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from stackwatch.connectors.text import clean_text
from stackwatch.errors import ConfigError
from stackwatch.signals.messages import Article

__all__ = ["MAX_BODY", "FullTextFetcher", "extract_main_text"]

log = logging.getLogger(__name__)

MAX_BODY = 200_000
"""Characters of extracted text kept per article."""


def _trafilatura() -> Any:
    try:
        import trafilatura
    except ImportError as error:
        raise ConfigError("sources[].full_text needs trafilatura: pip install 'stackwatch[fulltext]'") from error
    return trafilatura


def extract_main_text(html: bytes) -> str | None:
    """The main text of an HTML page (boilerplate, navigation and comments dropped), or None."""
    text = _trafilatura().extract(html, include_comments=False, include_tables=False, favor_precision=True)
    return clean_text(text, MAX_BODY) or None if isinstance(text, str) else None


class FullTextFetcher:
    """Fetches article pages with its own size, time and concurrency limits."""

    def __init__(
        self, *, max_bytes: int, timeout: float, concurrency: int, user_agent: str = "stackwatch",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:  # fmt: skip
        _trafilatura()  # fail at start, not at the first article, when the extra is missing
        self.max_bytes = max_bytes
        self._limit = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), follow_redirects=True, max_redirects=5,
            headers={"User-Agent": user_agent, "Accept": "text/html,application/xhtml+xml"}, transport=transport,
        )  # fmt: skip
        self._timeout = timeout

    async def close(self) -> None:
        await self._client.aclose()

    async def enrich(self, articles: Sequence[Article]) -> list[Article]:
        """The articles, each with its page's main text as ``body`` where the page could be read."""
        return list(await asyncio.gather(*(self._one(article) for article in articles)))

    async def _one(self, article: Article) -> Article:
        if article.body or not article.url.startswith(("http://", "https://")):
            return article
        async with self._limit:
            try:
                page = await asyncio.wait_for(self._fetch(article.url), self._timeout * 3)
                body = await asyncio.to_thread(extract_main_text, page)
            except (httpx.HTTPError, TimeoutError, ValueError) as error:
                log.warning("full text of %s (%s): %s", article.url, article.source, error or type(error).__name__)
                return article
        return dataclasses.replace(article, body=body) if body else article

    async def _fetch(self, url: str) -> bytes:
        async with self._client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise ValueError(f"HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise ValueError(f"page of {declared} bytes exceeds {self.max_bytes}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise ValueError(f"page larger than {self.max_bytes} bytes")
                chunks.append(chunk)
        return b"".join(chunks)
