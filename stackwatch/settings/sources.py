"""``sources:`` section: one entry per source, its ``type`` picks the connector."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, HttpUrl, field_validator

from stackwatch.settings.base import Section, parse_duration

__all__ = [
    "DemoSourceSettings",
    "FileSourceSettings",
    "GdeltSourceSettings",
    "HackerNewsSourceSettings",
    "HttpJsonSourceSettings",
    "JsonFeedSourceSettings",
    "RssSourceSettings",
    "SecEdgarSourceSettings",
    "SourceSettings",
]

Seconds = Annotated[float, BeforeValidator(parse_duration)]
SourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class FullTextSettings(Section):
    """Fetch each new article's page and keep its main text as the body (needs ``stackwatch[fulltext]``)."""

    max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="larger pages are skipped")
    timeout: Seconds = Field(default=15.0, gt=0)
    concurrency: int = Field(default=2, ge=1, le=32, description="pages fetched at once for this source")


class _SourceBase(Section):
    name: SourceName
    interval: Seconds = 300.0
    jitter: float = Field(default=0.1, ge=0.0, le=1.0, description="share of the interval added at random")
    enabled: bool = True
    max_backoff: Seconds = 3600.0
    full_text: FullTextSettings | None = None


class _HttpSourceBase(_SourceBase):
    timeout: Seconds = Field(default=20.0, gt=0, description="read timeout; a whole fetch may take three times it")
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="larger responses are refused")
    user_agent: str = "stackwatch/0.1 (+https://example.invalid/stackwatch)"


class RssSourceSettings(_HttpSourceBase):
    """RSS 0.9x/2.0, Atom or RDF feed fetched over HTTP(S)."""

    type: Literal["rss"]
    url: HttpUrl


class JsonFeedSourceSettings(_HttpSourceBase):
    """A JSON Feed 1.x fetched over HTTP(S)."""

    type: Literal["jsonfeed"]
    url: HttpUrl


class HttpJsonSourceSettings(_HttpSourceBase):
    """Any JSON API: dotted paths say where the items are and which fields are the article's."""

    type: Literal["http_json"]
    url: HttpUrl
    items: str = Field(default="", description="dotted path to the list of items; empty: the document is the list")
    title: str = "title"
    url_field: str = Field(default="url", description="path of the item's link inside an item")
    published: str = "published"
    summary: str = "summary"
    id_field: str = Field(default="id", description="path of the item's id; empty: ids come from the links")


class HackerNewsSourceSettings(_HttpSourceBase):
    """Hacker News stories matching a query (Algolia search API), newest first."""

    type: Literal["hackernews"]
    query: str = Field(min_length=1)
    endpoint: HttpUrl = HttpUrl("https://hn.algolia.com/api/v1/search_by_date")
    hits: int = Field(default=50, ge=1, le=1000)


class SecEdgarSourceSettings(_HttpSourceBase):
    """SEC EDGAR filings of one company (CIK) and one form type, from its Atom feed."""

    type: Literal["sec_edgar"]
    cik: str = Field(pattern=r"^\d{1,10}$", description="the company's Central Index Key, digits only")
    form: str = Field(default="8-K", pattern=r"^[A-Za-z0-9/-]{1,20}$")
    user_agent: str = Field(description="EDGAR requires a name and a contact e-mail, e.g. 'Acme Research ops@acme.com'")
    endpoint: HttpUrl = HttpUrl("https://www.sec.gov/cgi-bin/browse-edgar")
    count: int = Field(default=40, ge=1, le=100)

    @field_validator("cik", mode="before")
    @classmethod
    def _cik_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("user_agent")
    @classmethod
    def _contact(cls, value: str) -> str:
        if "@" not in value or value.startswith("stackwatch/"):
            raise ValueError("EDGAR requires a User-Agent naming you and a contact e-mail, e.g. 'Acme ops@acme.com'")
        return value


class GdeltSourceSettings(_HttpSourceBase):
    """The GDELT DOC 2.0 API article list for a query."""

    type: Literal["gdelt"]
    query: str = Field(min_length=1)
    endpoint: HttpUrl = HttpUrl("https://api.gdeltproject.org/api/v2/doc/doc")
    timespan: str = Field(default="1d", pattern=r"^\d+(min|h|d|w|m)$")
    max_records: int = Field(default=75, ge=1, le=250)
    interval: Seconds = 900.0


class FileSourceSettings(_SourceBase):
    """A JSONL file (or a directory of them), read and followed as it grows."""

    type: Literal["file"]
    path: Path
    interval: Seconds = 2.0


class DemoSourceSettings(_SourceBase):
    """Seventeen weeks of bundled news, dated back from the moment it first plays: the offline demo."""

    type: Literal["demo"]
    interval: Seconds = 2.0
    per_poll: int = Field(default=20, ge=1, le=1000)


SourceSettings = Annotated[
    RssSourceSettings
    | JsonFeedSourceSettings
    | HttpJsonSourceSettings
    | HackerNewsSourceSettings
    | SecEdgarSourceSettings
    | GdeltSourceSettings
    | FileSourceSettings
    | DemoSourceSettings,
    Field(discriminator="type"),
]
