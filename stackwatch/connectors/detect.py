"""One entry point for any document a source may serve, for ``stackwatch sources preview``.

    articles, rejected = parse_document(content, "preview", utcnow(), kind="auto")

``kind`` names a source type; ``auto`` tells them apart by content: JSON Feed, HN search, GDELT artlist,
JSON Lines, else an RSS/Atom/RDF feed. Each kind goes through the very parser its source uses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stackwatch.connectors.edgar import parse_edgar
from stackwatch.connectors.gdelt import gdelt_items
from stackwatch.connectors.hackernews import hn_items
from stackwatch.connectors.json_source import ItemsOf, Parsed, articles_from_items, load_json
from stackwatch.connectors.jsonfeed import is_json_feed, json_feed_items
from stackwatch.connectors.jsonl import article_from_record, parse_line
from stackwatch.connectors.rss import parse_feed
from stackwatch.errors import ParseError
from stackwatch.signals.messages import Article, DeadLetter

__all__ = ["KINDS", "parse_document"]

KINDS = ("auto", "rss", "jsonfeed", "hackernews", "gdelt", "sec_edgar", "jsonl")

_JSON_KINDS: dict[str, ItemsOf] = {"jsonfeed": json_feed_items, "hackernews": hn_items, "gdelt": gdelt_items}
"""Each JSON source type and the hook its source reads a document with."""


def parse_document(
    content: bytes, source: str, fetched_at: datetime, *, kind: str = "auto", content_type: str = ""
) -> Parsed:
    """Articles and rejects from a document of the given kind; ParseError naming the reason otherwise."""
    if kind == "auto":
        kind = _sniff(content)
    if kind == "rss":
        return parse_feed(content, source, fetched_at, content_type=content_type)
    if kind == "sec_edgar":
        return parse_edgar(content, source, fetched_at, content_type=content_type)
    if kind == "jsonl":
        return _jsonl(content, source, fetched_at)
    if kind != "json" and kind not in _JSON_KINDS:
        raise ParseError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    data = load_json(content)
    if kind == "json":
        kind = _json_kind(data)
    return articles_from_items(_JSON_KINDS[kind](data), source, kind, fetched_at)


def _sniff(content: bytes) -> str:
    head = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        lines = [line for line in content.splitlines() if line.strip()]
        if len(lines) > 1 and all(line.lstrip().startswith(b"{") and line.rstrip().endswith(b"}") for line in lines):
            return "jsonl"
        return "json"
    if b"<company-info>" in content[:4000] or b"www.sec.gov/cgi-bin/browse-edgar" in content[:4000]:
        return "sec_edgar"
    return "rss"


def _json_kind(data: Any) -> str:
    if is_json_feed(data):
        return "jsonfeed"
    if isinstance(data, dict) and "hits" in data:
        return "hackernews"
    if isinstance(data, dict) and "articles" in data:
        return "gdelt"
    raise ParseError("JSON of no known shape (not a JSON Feed, HN search or GDELT artlist); use an http_json source")


def _jsonl(content: bytes, source: str, fetched_at: datetime) -> Parsed:
    articles: list[Article] = []
    rejected: list[DeadLetter] = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            articles.append(article_from_record(parse_line(line), source, "file", fetched_at))
        except ValueError as error:
            payload = line[:4000].decode("utf-8", "replace")
            rejected.append(
                DeadLetter(stage="connector", reason=f"line {number}: {error}", payload=payload, origin=source)
            )
    return articles, rejected
