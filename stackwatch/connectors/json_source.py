"""The base of every JSON source: fetch, decode, check the shape, read each item; one hook per source.

    class MySource(JsonSource):
        type = "my_json"
        def items(self, data):                     # ParseError when the document is not this API's answer
            if not isinstance(data, dict) or not isinstance(data.get("posts"), list):
                raise ParseError('not a My answer: no "posts" list')
            return JsonItems(data["posts"], my_record)

The base decodes the fetched document (its declared charset, else UTF-8; HTML, empty or malformed documents
refused with the reason; it was already bounded by ``HttpOptions.max_bytes``), asks ``items`` for the list and
how one item reads, and turns each item into an article. An item that cannot become one (not an object, no
title or summary, no id or url) is a dead letter ``item N rejected: ...`` carrying the item itself; the others
go on. Fetching, conditional GET and the ids already produced belong to
:class:`~stackwatch.connectors.http.HttpPollingSource`.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from stackwatch.connectors.http import PAYLOAD_LIMIT, Document, HttpPollingSource
from stackwatch.connectors.jsonl import article_from_record
from stackwatch.connectors.text import decode_text
from stackwatch.errors import ParseError
from stackwatch.signals.jsondecode import loads_json
from stackwatch.signals.messages import Article, DeadLetter

__all__ = [
    "ItemsOf",
    "JsonItems",
    "JsonSource",
    "Normaliser",
    "Parsed",
    "articles_from_items",
    "iso_time",
    "load_json",
    "parse_json",
]

Parsed = tuple[list[Article], list[DeadLetter]]

Normaliser = Callable[[dict[str, Any]], dict[str, Any]]
"""One JSON item as a record for :func:`~stackwatch.connectors.jsonl.article_from_record`."""


@dataclass(frozen=True, slots=True)
class JsonItems:
    """What a JSON document holds: its items as found (any JSON values), and how one object item reads."""

    items: list[Any]
    record: Normaliser


ItemsOf = Callable[[Any], JsonItems]
"""The items of a decoded document; ParseError naming what is wrong when the document has another shape."""


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
        return loads_json(text)
    except ValueError as error:
        raise ParseError(str(error)) from error


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


def articles_from_items(found: JsonItems, source: str, connector: str, fetched_at: datetime) -> Parsed:
    """Articles from a document's items; items that cannot become articles come back as dead letters."""
    articles: list[Article] = []
    rejected: list[DeadLetter] = []
    for index, item in enumerate(found.items):
        try:
            if not isinstance(item, dict):
                raise ValueError(f"expected an object, got {type(item).__name__}")
            articles.append(article_from_record(found.record(item), source, connector, fetched_at))
        except ValueError as error:
            rejected.append(
                DeadLetter(
                    stage="connector",
                    reason=f"item {index} rejected: {error}",
                    payload=json.dumps(item, default=str)[:PAYLOAD_LIMIT],
                    origin=source,
                )
            )
    return articles, rejected


def parse_json(
    content: bytes, items_of: ItemsOf, source: str, connector: str, fetched_at: datetime, charset: str | None = None
) -> Parsed:
    """Articles and rejects from a JSON document whose items ``items_of`` finds; ParseError if it is none."""
    return articles_from_items(items_of(load_json(content, charset)), source, connector, fetched_at)


class JsonSource(HttpPollingSource):
    """An HTTP source whose answers are JSON documents; subclasses implement :meth:`items`."""

    type = "json"
    accept: ClassVar[str] = "application/json"

    @abc.abstractmethod
    def items(self, data: Any) -> JsonItems:
        """The items of a decoded answer and how one reads; ParseError when the answer has another shape."""

    def parse(self, document: Document, fetched_at: datetime) -> Parsed:
        return parse_json(document.content, self.items, self.name, self.type, fetched_at, document.charset)
