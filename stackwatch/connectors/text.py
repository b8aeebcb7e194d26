"""Turning outside text into clean article fields: HTML stripped, whitespace folded, lengths bounded."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

__all__ = ["MAX_SUMMARY", "MAX_TITLE", "clean_text", "decode_text", "sane_published_at"]

MAX_TITLE = 1_000
MAX_SUMMARY = 10_000
# What a browser would read as a tag or markup declaration: "<" then a letter, "/", "!" or "?" (so "a < b" stays),
# closed by ">" or cut off by the end of the text.
_TAG = re.compile(r"<[A-Za-z/!?][^>]{0,2000}(?:>|$)")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FUTURE_SLACK = timedelta(hours=1)


def clean_text(value: object, limit: int) -> str:
    """Plain text from a possibly-HTML string: entities decoded, then tags dropped, controls removed, whitespace
    folded, bounded. Decoding comes first, so an escaped tag (``&lt;!channel&gt;``, a CDATA title) is dropped too
    rather than surfacing as markup.

    >>> clean_text("<b>Nvidia</b> &lt;!channel&gt; &amp; AMD: 3 &lt; 5 &lt;script", 100)
    'Nvidia & AMD: 3 < 5'
    """
    if not isinstance(value, str):
        return ""
    text = _TAG.sub(" ", html.unescape(value[: limit * 4]))
    return _SPACE.sub(" ", _CONTROL.sub("", text)).strip()[:limit]


def sane_published_at(published: datetime | None, fetched_at: datetime) -> datetime:
    """The publication time to use: missing or implausibly future times become the fetch time."""
    if published is None or published > fetched_at + _FUTURE_SLACK or published.year < 1990:
        return fetched_at
    return published.astimezone(UTC)


def decode_text(content: bytes, charset: str | None, errors: str = "replace") -> str:
    """Text from bytes in the declared charset; an unknown charset name falls back to UTF-8."""
    try:
        return content.decode(charset or "utf-8", errors)
    except LookupError:
        return content.decode("utf-8", errors)
