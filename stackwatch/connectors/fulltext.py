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

from stackwatch.connectors.http import HttpOptions, client_for, fetch
from stackwatch.connectors.text import clean_text
from stackwatch.errors import ConfigError, SourceError
from stackwatch.signals.messages import Article

__all__ = ["MAX_BODY", "FullTextFetcher", "extract_main_text"]

log = logging.getLogger(__name__)

MAX_BODY = 200_000
"""Characters of extracted text kept per article."""
PAGE_ACCEPT = "text/html,application/xhtml+xml"


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
    """Fetches article pages with its own size, time and concurrency limits, through the sources' own
    :func:`~stackwatch.connectors.http.fetch` (size cap, deadline of three timeouts, at most 5 redirects)."""

    def __init__(
        self, *, max_bytes: int, timeout: float, concurrency: int, user_agent: str = "stackwatch",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:  # fmt: skip
        _trafilatura()  # fail at start, not at the first article, when the extra is missing
        self.max_bytes = max_bytes
        self._limit = asyncio.Semaphore(concurrency)
        self._options = HttpOptions(timeout=timeout, max_bytes=max_bytes, user_agent=user_agent, accept=PAGE_ACCEPT)
        self._client = client_for(self._options, transport)

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
                page = await self._fetch(article.url)
                body = await asyncio.to_thread(extract_main_text, page)
            except (SourceError, ValueError) as error:
                log.warning("full text of %s (%s): %s", article.url, article.source, error or type(error).__name__)
                return article
        return dataclasses.replace(article, body=body) if body else article

    async def _fetch(self, url: str) -> bytes:
        document = await fetch(self._client, url, self._options)
        if document.retry_after is not None:  # 429 or 503: no page this time
            raise SourceError(f"HTTP {document.status} from {url}")
        return document.content
