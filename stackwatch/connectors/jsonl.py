"""Articles from JSON Lines records, shared by the file and demo sources.

A record needs a ``title`` or ``summary``/``text``; ``id``, ``url`` and ``published_at`` are optional::

    {"id": "r1", "url": "https://x.test/1", "title": "...", "published_at": "2026-05-01T12:00:00Z"}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stackwatch.connectors.text import MAX_SUMMARY, MAX_TITLE, clean_text, sane_published_at
from stackwatch.signals.ids import article_id
from stackwatch.signals.jsondecode import decode_json_object
from stackwatch.signals.messages import Article, MessageError, parse_time

__all__ = ["MAX_LINE", "article_from_record", "parse_line"]

MAX_LINE = 1024 * 1024


def parse_line(line: bytes) -> dict[str, Any]:
    """The JSON object on one line (at most MAX_LINE bytes); ValueError with the reason otherwise."""
    return decode_json_object(line, limit=MAX_LINE, what="line")


def article_from_record(record: dict[str, Any], source: str, connector: str, fetched_at: datetime) -> Article:
    """An article from a JSON record; ValueError naming the field that is wrong."""
    title = clean_text(record.get("title"), MAX_TITLE)
    summary = clean_text(record.get("summary") or record.get("text"), MAX_SUMMARY)
    if not title and not summary:
        raise ValueError("record has neither a title nor a summary/text")
    url = record.get("url") if isinstance(record.get("url"), str) else ""
    raw_id = record.get("id")
    guid = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    if guid is None and not url:
        guid = f"{title}\n{summary}"  # nothing else identifies it: its content does
    published = None
    if record.get("published_at") is not None:
        try:
            published = parse_time(record["published_at"], "published_at")
        except MessageError as error:
            raise ValueError(str(error)) from error
    return Article(
        id=article_id(source, guid, url),
        url=str(url or ""),
        title=title,
        summary=summary,
        source=source,
        connector=connector,
        published_at=sane_published_at(published, fetched_at),
        fetched_at=fetched_at,
        language=record.get("language") if isinstance(record.get("language"), str) else None,
    )
