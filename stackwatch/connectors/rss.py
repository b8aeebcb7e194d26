"""RSS 0.9x/2.0, Atom and RDF feeds over HTTP, parsed with feedparser.

Polite by default: conditional GET (ETag and Last-Modified stored exactly as received), a response-size cap,
connect/read timeouts, Retry-After honoured on 429 and 503. Items already produced are remembered in the
checkpoint and not produced again.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx

from stackwatch.connectors.base import Checkpoint, PollResult, Retry, Source
from stackwatch.connectors.text import MAX_SUMMARY, MAX_TITLE, clean_text, sane_published_at
from stackwatch.errors import ParseError, SourceError
from stackwatch.signals.ids import article_id
from stackwatch.signals.messages import Article, DeadLetter, utcnow

__all__ = ["RssSource", "parse_feed"]

log = logging.getLogger(__name__)

SEEN_LIMIT = 5_000
"""How many produced ids a checkpoint remembers (far more than any feed lists at once)."""


def parse_feed(content: bytes, source: str, fetched_at: datetime) -> tuple[list[Article], list[DeadLetter]]:
    """Articles from a feed document; entries that cannot become articles come back as dead letters.

    Raises ParseError when the document is not a feed at all.
    """
    parsed = feedparser.parse(content, sanitize_html=False, resolve_relative_uris=False)
    entries: Sequence[Any] = parsed.get("entries", [])
    if not entries:
        if not parsed.get("version"):
            reason = parsed.get("bozo_exception") or "no RSS, Atom or RDF root element"
            head = content.lstrip()[:100].lower()
            if head.startswith((b"<!doctype html", b"<html")):
                reason = "the document is HTML, not a feed"
            raise ParseError(f"not a feed: {reason}")
        return [], []
    articles: list[Article] = []
    rejected: list[DeadLetter] = []
    for entry in entries:
        try:
            articles.append(_article(entry, source, fetched_at))
        except ValueError as error:
            rejected.append(
                DeadLetter(stage="connector", reason=str(error), payload=repr(dict(entry))[:4000], origin=source)
            )
    return articles, rejected


def _article(entry: Any, source: str, fetched_at: datetime) -> Article:
    link = entry.get("link") or ""
    guid = entry.get("id") or None
    title = clean_text(entry.get("title"), MAX_TITLE)
    summary = clean_text(entry.get("summary") or entry.get("description"), MAX_SUMMARY)
    if not title and not summary:
        raise ValueError("entry has neither a title nor a summary")
    published = None
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        stamp = entry.get(key)
        if stamp:
            try:
                published = datetime.fromtimestamp(calendar.timegm(stamp), UTC)
            except (OverflowError, ValueError, OSError):
                published = None
            break
    return Article(
        id=article_id(source, guid, link),
        url=str(link),
        title=title,
        summary=summary,
        source=source,
        connector="rss",
        published_at=sane_published_at(published, fetched_at),
        fetched_at=fetched_at,
        language=entry.get("language") or None,
    )


class RssSource(Source):
    """Polls one feed URL."""

    type = "rss"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout: float = 20.0,
        max_bytes: int = 10 * 1024 * 1024,
        user_agent: str = "stackwatch",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(name)
        self.url = url
        self.max_bytes = max_bytes
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._headers = {"User-Agent": user_agent, "Accept": "application/rss+xml, application/atom+xml, */*"}
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def setup(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self._timeout, headers=self._headers, follow_redirects=True, max_redirects=5,
            transport=self._transport,
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def poll(self, checkpoint: Checkpoint) -> PollResult:
        if self._client is None:
            await self.setup()
        assert self._client is not None
        headers = {}
        if checkpoint.get("etag"):
            headers["If-None-Match"] = str(checkpoint["etag"])
        if checkpoint.get("last_modified"):
            headers["If-Modified-Since"] = str(checkpoint["last_modified"])
        fetched_at = utcnow()
        try:
            async with self._client.stream("GET", self.url, headers=headers) as response:
                if response.status_code == 304:
                    return PollResult(checkpoint=checkpoint)
                if response.status_code in (429, 503):
                    after = _retry_after(response.headers.get("Retry-After"))
                    return PollResult(
                        checkpoint=checkpoint, retry=Retry(after, f"HTTP {response.status_code} from {self.url}")
                    )
                if response.status_code >= 400:
                    raise SourceError(f"HTTP {response.status_code} from {self.url}")
                content = await _read_capped(response, self.max_bytes)
                etag = response.headers.get("ETag")
                last_modified = response.headers.get("Last-Modified")
        except httpx.HTTPError as error:
            raise SourceError(f"cannot fetch {self.url}: {type(error).__name__}: {error}") from error
        articles, rejected = parse_feed(content, self.name, fetched_at)
        seen = list(checkpoint.get("seen", []))
        seen_set = set(seen)
        fresh = [article for article in articles if article.id not in seen_set]
        seen.extend(article.id for article in fresh)
        new_checkpoint = {"etag": etag, "last_modified": last_modified, "seen": seen[-SEEN_LIMIT:]}
        return PollResult(articles=fresh, rejected=rejected, checkpoint=new_checkpoint)


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise SourceError(f"response from {response.url} is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None, default: float = 60.0, cap: float = 6 * 3600) -> float:
    if not value:
        return default
    try:
        return min(cap, max(0.0, float(value)))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(cap, max(0.0, (moment - utcnow()).total_seconds()))
