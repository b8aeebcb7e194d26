"""RSS 0.9x/2.0, Atom and RDF feeds over HTTP, parsed with feedparser.

    articles, rejected = parse_feed(content, "wire", utcnow())      # ParseError if it is not a feed at all

Fetching (conditional GET, Retry-After, size cap, timeouts, ids already produced) is the shared
:class:`~stackwatch.connectors.http.HttpPollingSource`; this module only turns feed documents into articles.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx

from stackwatch.connectors.http import Document, HttpOptions, HttpPollingSource
from stackwatch.connectors.text import MAX_SUMMARY, MAX_TITLE, clean_text, sane_published_at
from stackwatch.errors import ParseError
from stackwatch.signals.ids import article_id
from stackwatch.signals.messages import Article, DeadLetter

__all__ = ["FEED_ACCEPT", "RssSource", "articles_from_feed", "parse_feed", "parse_feed_document"]

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, */*;q=0.5"


_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_PROLOG_BYTES = 256 * 1024


def parse_feed_document(content: bytes, content_type: str = "") -> Any:
    """feedparser's result for a document that is a feed; ParseError with the reason otherwise."""
    headers = {"content-type": content_type} if content_type else None
    if _ENTITY_DECLARATION.search(content[:_PROLOG_BYTES]):
        # Feeds never declare entities; a document that does is an expansion bomb, and feedparser's loose
        # fallback parser spends seconds on one even after expat refuses it.
        raise ParseError("not a feed: the document declares XML entities (refused: entity expansion)")
    try:
        parsed = feedparser.parse(content, sanitize_html=False, resolve_relative_uris=False, response_headers=headers)
    except (ValueError, TypeError, LookupError, RecursionError) as error:  # feedparser's known failure modes
        raise ParseError(f"not a feed: {type(error).__name__}: {error}") from error
    if not parsed.get("entries"):
        head = content.lstrip()[:200].lower()
        if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
            raise ParseError("not a feed: the document is HTML")
        if not parsed.get("version"):
            reason = parsed.get("bozo_exception") or "no RSS, Atom or RDF root element"
            raise ParseError(f"not a feed: {reason}")
        if parsed.get("bozo"):
            raise ParseError(f"malformed feed with no readable entries: {parsed.get('bozo_exception')}")
    return parsed


def articles_from_feed(
    parsed: Any, source: str, fetched_at: datetime, connector: str = "rss"
) -> tuple[list[Article], list[DeadLetter]]:
    """Articles from a parsed feed; entries that cannot become articles come back as dead letters.

    Raises ParseError when a malformed feed yields no article at all.
    """
    entries: Sequence[Any] = parsed.get("entries", [])
    feed_language = parsed.get("feed", {}).get("language")
    articles: list[Article] = []
    rejected: list[DeadLetter] = []
    for entry in entries:
        try:
            articles.append(_article(entry, source, connector, fetched_at, feed_language))
        except ValueError as error:
            rejected.append(
                DeadLetter(
                    stage="connector",
                    reason=f"entry rejected: {error}",
                    payload=repr(dict(entry))[:4000],
                    origin=source,
                )
            )
    if not articles and parsed.get("bozo"):
        raise ParseError(f"malformed feed, no entry readable: {parsed.get('bozo_exception')}")
    return articles, rejected


def parse_feed(
    content: bytes, source: str, fetched_at: datetime, *, connector: str = "rss", content_type: str = ""
) -> tuple[list[Article], list[DeadLetter]]:
    """Articles from a feed document; entries that cannot become articles come back as dead letters.

    Raises ParseError when the document is not a feed at all.
    """
    return articles_from_feed(parse_feed_document(content, content_type), source, fetched_at, connector)


def _article(entry: Any, source: str, connector: str, fetched_at: datetime, feed_language: Any = None) -> Article:
    link = entry.get("link") or ""
    guid = entry.get("id") or None
    title = clean_text(entry.get("title"), MAX_TITLE)
    summary = clean_text(entry.get("summary") or entry.get("description"), MAX_SUMMARY)
    body = None
    contents = entry.get("content") or []
    if contents and isinstance(contents[0], dict):
        body = clean_text(contents[0].get("value"), MAX_SUMMARY * 10) or None
    if not title and not summary and not body:
        raise ValueError("entry has no title, summary or content")
    if not summary and body:
        summary = body[:MAX_SUMMARY]
    published = None
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get skips FeedParserDict's deprecated aliasing of updated_parsed to published_parsed
        stamp = dict.get(entry, key) if isinstance(entry, dict) else None
        if stamp:
            try:
                published = datetime.fromtimestamp(calendar.timegm(stamp), UTC)
            except (OverflowError, ValueError, OSError, TypeError):
                published = None
            break
    language = entry.get("language") or feed_language
    return Article(
        id=article_id(source, str(guid) if guid else None, str(link)),
        url=str(link),
        title=title,
        summary=summary,
        source=source,
        connector=connector,
        published_at=sane_published_at(published, fetched_at),
        fetched_at=fetched_at,
        body=body if body != summary else None,
        language=language if isinstance(language, str) and language else None,
    )


class RssSource(HttpPollingSource):
    """Polls one feed URL (RSS 0.9x/2.0, Atom, RDF)."""

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
        options = HttpOptions(timeout=timeout, max_bytes=max_bytes, user_agent=user_agent, accept=FEED_ACCEPT)
        super().__init__(name, url, options=options, transport=transport)

    def parse(self, document: Document, fetched_at: datetime) -> tuple[list[Article], list[DeadLetter]]:
        return parse_feed(
            document.content, self.name, fetched_at, connector=self.type, content_type=document.content_type
        )
