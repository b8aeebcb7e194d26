"""The GDELT DOC 2.0 API article list by query.

    source = GdeltSource("gdelt-capex", '"data center" (capex OR "capital expenditure")')
    # GET https://api.gdeltproject.org/api/v2/doc/doc?query=...&mode=artlist&format=json&sort=datedesc&...

GDELT answers a query with no matches with ``{}``, and a bad query with a plain-text message (rejected).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from stackwatch.connectors.http import Document, HttpOptions, HttpPollingSource
from stackwatch.connectors.jsonapi import iso_time, load_json, parse_items
from stackwatch.errors import ParseError
from stackwatch.signals.messages import Article, DeadLetter

__all__ = ["GDELT_ENDPOINT", "GdeltSource", "articles_from_gdelt", "parse_gdelt"]

GDELT_ENDPOINT = "https://api.gdeltproject.org/api/v2/doc/doc"
_LANGUAGES = {
    "english": "en",
    "german": "de",
    "french": "fr",
    "spanish": "es",
    "chinese": "zh",
    "japanese": "ja",
    "korean": "ko",
    "italian": "it",
    "portuguese": "pt",
    "russian": "ru",
    "dutch": "nl",
    "arabic": "ar",
}


def _record(item: dict[str, Any]) -> dict[str, Any]:
    language = item.get("language")
    return {
        "id": None,  # GDELT has no item id: the canonical URL is it
        "title": item.get("title"),
        "url": item.get("url"),
        "summary": "",
        "published_at": iso_time(item.get("seendate")),
        "language": _LANGUAGES.get(language.lower()) if isinstance(language, str) else None,
    }


def articles_from_gdelt(
    data: Any, source: str, fetched_at: datetime, connector: str = "gdelt"
) -> tuple[list[Article], list[DeadLetter]]:
    if not isinstance(data, dict):
        raise ParseError(f"not a GDELT artlist answer: expected an object, got {type(data).__name__}")
    articles = data.get("articles", [])
    if not isinstance(articles, list):
        raise ParseError('not a GDELT artlist answer: "articles" is not a list')
    return parse_items(articles, _record, source, connector, fetched_at)


def parse_gdelt(
    content: bytes, source: str, fetched_at: datetime, *, connector: str = "gdelt", charset: str | None = None
) -> tuple[list[Article], list[DeadLetter]]:
    """Articles from a GDELT DOC 2.0 ``mode=artlist&format=json`` answer; ParseError when it is not one."""
    return articles_from_gdelt(load_json(content, charset), source, fetched_at, connector)


class GdeltSource(HttpPollingSource):
    """Polls the GDELT DOC 2.0 article list for ``query`` (GDELT asks for at most one request per 5 s)."""

    type = "gdelt"

    def __init__(
        self,
        name: str,
        query: str,
        *,
        endpoint: str = GDELT_ENDPOINT,
        timespan: str = "1d",
        max_records: int = 75,
        options: HttpOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        params = {
            "query": query,
            "mode": "artlist",
            "format": "json",
            "sort": "datedesc",
            "timespan": timespan,
            "maxrecords": str(max_records),
        }
        options = options or HttpOptions(accept="application/json")
        super().__init__(name, endpoint, params=params, options=options, transport=transport)

    def parse(self, document: Document, fetched_at: datetime) -> tuple[list[Article], list[DeadLetter]]:
        return parse_gdelt(document.content, self.name, fetched_at, connector=self.type, charset=document.charset)
