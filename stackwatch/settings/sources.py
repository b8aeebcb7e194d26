"""``sources:`` section: one entry per source, its ``type`` picks the connector."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, HttpUrl

from stackwatch.settings.base import Section, parse_duration

__all__ = ["DemoSourceSettings", "FileSourceSettings", "RssSourceSettings", "SourceSettings"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]
SourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class _SourceBase(Section):
    name: SourceName
    interval: Seconds = 300.0
    jitter: float = Field(default=0.1, ge=0.0, le=1.0, description="share of the interval added at random")
    enabled: bool = True
    max_backoff: Seconds = 3600.0


class RssSourceSettings(_SourceBase):
    """RSS 0.9x/2.0, Atom or RDF feed fetched over HTTP(S)."""

    type: Literal["rss"]
    url: HttpUrl
    timeout: Seconds = 20.0
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    user_agent: str = "stackwatch/0.1 (+https://example.invalid/stackwatch)"


class FileSourceSettings(_SourceBase):
    """A JSONL file (or a directory of them), read and followed as it grows."""

    type: Literal["file"]
    path: Path
    interval: Seconds = 2.0


class DemoSourceSettings(_SourceBase):
    """Bundled sample articles, re-stamped with the current time: the offline demo."""

    type: Literal["demo"]
    interval: Seconds = 2.0
    per_poll: int = Field(default=5, ge=1, le=1000)


SourceSettings = Annotated[
    RssSourceSettings | FileSourceSettings | DemoSourceSettings, Field(discriminator="type")
]
