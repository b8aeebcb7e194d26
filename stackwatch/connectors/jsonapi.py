"""JSON APIs as sources: a small declarative mapping from response fields to article fields.

    mapping = JsonMapping(items="data.posts", title="headline", url="link", published="date")
    articles, rejected = parse_mapped(content, mapping, "vendor-api", "http_json", utcnow())

Paths are dotted (``data.posts``; a number indexes a list: ``results.0.items``); an empty ``items`` path means
the document itself is the list. Times may be ISO-8601 strings, RFC 2822 dates or Unix seconds; a time that
cannot be read becomes the fetch time rather than costing the article.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from stackwatch.connectors.http import Document, HttpOptions, HttpPollingSource
from stackwatch.connectors.jsonl import article_from_record
from stackwatch.connectors.text import decode_text
from stackwatch.errors import ParseError
from stackwatch.signals.messages import Article, DeadLetter

__all__ = ["HttpJsonSource", "JsonMapping", "dig", "iso_time", "load_json", "parse_items", "parse_mapped"]

MAX_DEPTH = 200


def load_json(content: bytes, charset: str | None = None) -> Any:
    """The JSON value of a document; ParseError with the reason (HTML, bad encoding, bad JSON) otherwise."""
    head = content.lstrip()[:200].lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise ParseError("not JSON: the document is HTML")
    if head.startswith(b"<"):
        raise ParseError("not JSON: the document is XML or HTML")
    if not head:
        raise ParseError("not JSON: the document is empty")
    try:
        text = decode_text(content, charset, errors="strict") if charset else content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ParseError(f"not JSON: not valid {charset or 'UTF-8'} at byte {error.start}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ParseError(f"not JSON: {error}") from error
    except RecursionError as error:
        raise ParseError("not JSON: nested too deeply") from error


def dig(value: Any, path: str) -> Any:
    """The value at a dotted path, or None when any step is missing."""
    if not path:
        return value
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def iso_time(value: Any) -> str | None:
    """An ISO-8601 UTC time from an ISO string, an RFC 2822 date or Unix seconds; None when unreadable."""
    moment: datetime | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            moment = datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                moment = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


Normaliser = Callable[[Any], dict[str, Any]]
"""One item of a JSON list as a record for :func:`~stackwatch.connectors.jsonl.article_from_record`."""


def parse_items(
    items: Any, normalise: Normaliser, source: str, connector: str, fetched_at: datetime
) -> tuple[list[Article], list[DeadLetter]]:
    """Articles from a list of JSON items; items that cannot become articles come back as dead letters."""
    if not isinstance(items, list):
        raise ParseError(f"expected a list of items, got {type(items).__name__}")
    articles: list[Article] = []
    rejected: list[DeadLetter] = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValueError(f"expected an object, got {type(item).__name__}")
            articles.append(article_from_record(normalise(item), source, connector, fetched_at))
        except ValueError as error:
            rejected.append(
                DeadLetter(
                    stage="connector",
                    reason=f"item {index} rejected: {error}",
                    payload=json.dumps(item, default=str)[:4000],
                    origin=source,
                )
            )
    return articles, rejected


def _string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class JsonMapping:
    """Where a JSON API keeps its items and, inside each item, the article fields."""

    items: str = ""
    title: str = "title"
    url: str = "url"
    published: str = "published"
    summary: str = "summary"
    id: str = "id"

    def record(self, item: Any) -> dict[str, Any]:
        return {
            "id": _string(dig(item, self.id)) if self.id else None,
            "title": dig(item, self.title),
            "url": dig(item, self.url),
            "summary": dig(item, self.summary),
            "published_at": iso_time(dig(item, self.published)),
        }


def parse_mapped(
    content: bytes,
    mapping: JsonMapping,
    source: str,
    connector: str,
    fetched_at: datetime,
    charset: str | None = None,
) -> tuple[list[Article], list[DeadLetter]]:
    """Articles from a JSON document through a mapping; ParseError when the items are not where it says."""
    data = load_json(content, charset)
    items = dig(data, mapping.items)
    if not isinstance(items, list):
        where = f"at {mapping.items!r}" if mapping.items else "at the top level"
        raise ParseError(f"no list of items {where} (found {type(items).__name__})")
    return parse_items(items, mapping.record, source, connector, fetched_at)


class HttpJsonSource(HttpPollingSource):
    """Any JSON API, mapped to articles by a :class:`JsonMapping`."""

    type = "http_json"

    def __init__(
        self,
        name: str,
        url: str,
        mapping: JsonMapping,
        *,
        options: HttpOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(name, url, options=options or HttpOptions(accept="application/json"), transport=transport)
        self.mapping = mapping

    def parse(self, document: Document, fetched_at: datetime) -> tuple[list[Article], list[DeadLetter]]:
        return parse_mapped(document.content, self.mapping, self.name, self.type, fetched_at, document.charset)
