"""Connectors: sources that fetch and parse news into :class:`~stackwatch.signals.messages.Article` messages.

Source types register by name in :data:`SOURCE_TYPES`, each with a docstring (a test fails without one);
``build_source`` turns a ``sources:`` entry of the configuration into a ready :class:`Source`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stackwatch.connectors.base import Checkpoint, PollResult, Publisher, Retry, Source
from stackwatch.connectors.checkpoints import CheckpointStore
from stackwatch.connectors.demo import DemoSource
from stackwatch.connectors.edgar import SecEdgarSource
from stackwatch.connectors.file import FileSource
from stackwatch.connectors.gdelt import GdeltSource
from stackwatch.connectors.hackernews import HackerNewsSource
from stackwatch.connectors.http import HttpOptions, HttpPollingSource
from stackwatch.connectors.json_source import JsonItems, JsonSource
from stackwatch.connectors.jsonapi import HttpJsonSource, JsonMapping
from stackwatch.connectors.jsonfeed import JsonFeedSource
from stackwatch.connectors.politeness import HostLimiter
from stackwatch.connectors.rss import RssSource, parse_feed
from stackwatch.connectors.scheduler import Schedule, Scheduler, SourceState

if TYPE_CHECKING:  # the settings describe the sources; the connectors do not import them at run time
    from stackwatch.settings.sources import (
        DemoSourceSettings,
        FileSourceSettings,
        GdeltSourceSettings,
        HackerNewsSourceSettings,
        HttpJsonSourceSettings,
        JsonFeedSourceSettings,
        RssSourceSettings,
        SecEdgarSourceSettings,
        SourceSettings,
        _HttpSourceBase,
    )

__all__ = [
    "SOURCE_TYPES",
    "Checkpoint",
    "CheckpointStore",
    "DemoSource",
    "FileSource",
    "GdeltSource",
    "HackerNewsSource",
    "HostLimiter",
    "HttpJsonSource",
    "HttpPollingSource",
    "JsonFeedSource",
    "JsonItems",
    "JsonSource",
    "PollResult",
    "Publisher",
    "Retry",
    "RssSource",
    "Schedule",
    "Scheduler",
    "SecEdgarSource",
    "Source",
    "SourceState",
    "build_source",
    "parse_feed",
]


def _options(settings: _HttpSourceBase, accept: str) -> HttpOptions:
    return HttpOptions(
        timeout=settings.timeout, max_bytes=settings.max_bytes, user_agent=settings.user_agent, accept=accept
    )


def _rss(settings: RssSourceSettings) -> Source:
    """RSS 0.9x/2.0, Atom or RDF feed over HTTP(S): ``url``, ``timeout``, ``max_bytes``, ``user_agent``."""
    return RssSource(
        settings.name,
        str(settings.url),
        timeout=settings.timeout,
        max_bytes=settings.max_bytes,
        user_agent=settings.user_agent,
    )


def _jsonfeed(settings: JsonFeedSourceSettings) -> Source:
    """JSON Feed 1.x over HTTP(S): ``url``, ``timeout``, ``max_bytes``, ``user_agent``."""
    return JsonFeedSource(settings.name, str(settings.url), options=_options(settings, "application/feed+json"))


def _http_json(settings: HttpJsonSourceSettings) -> Source:
    """Any JSON API mapped by dotted paths: ``url``, ``items``, ``title``, ``url_field``, ``published``,
    ``summary``, ``id_field``."""
    mapping = JsonMapping(
        items=settings.items,
        title=settings.title,
        url=settings.url_field,
        published=settings.published,
        summary=settings.summary,
        id=settings.id_field,
    )
    return HttpJsonSource(settings.name, str(settings.url), mapping, options=_options(settings, "application/json"))


def _hackernews(settings: HackerNewsSourceSettings) -> Source:
    """Hacker News stories matching ``query``, newest first (Algolia search at ``endpoint``), ``hits`` a poll."""
    return HackerNewsSource(
        settings.name,
        settings.query,
        endpoint=str(settings.endpoint),
        hits=settings.hits,
        options=_options(settings, "application/json"),
    )


def _sec_edgar(settings: SecEdgarSourceSettings) -> Source:
    """SEC EDGAR filings of company ``cik`` and form ``form`` (8-K, 10-Q, 10-K) from its Atom feed;
    ``user_agent`` must name you and a contact e-mail, as EDGAR requires."""
    return SecEdgarSource(
        settings.name,
        cik=settings.cik,
        form=settings.form,
        user_agent=settings.user_agent,
        endpoint=str(settings.endpoint),
        count=settings.count,
        timeout=settings.timeout,
        max_bytes=settings.max_bytes,
    )


def _gdelt(settings: GdeltSourceSettings) -> Source:
    """The GDELT DOC 2.0 article list for ``query`` over ``timespan``, newest first, ``max_records`` a poll."""
    return GdeltSource(
        settings.name,
        settings.query,
        endpoint=str(settings.endpoint),
        timespan=settings.timespan,
        max_records=settings.max_records,
        options=_options(settings, "application/json"),
    )


def _file(settings: FileSourceSettings) -> Source:
    """A JSONL file or a directory of ``*.jsonl`` files, followed as it grows: ``path``."""
    return FileSource(settings.name, settings.path)


def _demo(settings: DemoSourceSettings) -> Source:
    """The bundled sample articles, played once, ``per_poll`` at a time: the offline demo."""
    return DemoSource(settings.name, per_poll=settings.per_poll)


SOURCE_TYPES: dict[str, Callable[[Any], Source]] = {  # Any: each takes its own type's settings
    "rss": _rss,
    "jsonfeed": _jsonfeed,
    "http_json": _http_json,
    "hackernews": _hackernews,
    "sec_edgar": _sec_edgar,
    "gdelt": _gdelt,
    "file": _file,
    "demo": _demo,
}


def build_source(settings: SourceSettings) -> tuple[Source, Schedule]:
    """The source and schedule for one ``sources:`` entry of the configuration."""
    source = SOURCE_TYPES[settings.type](settings)
    limits = settings.full_text
    if limits is not None:
        from stackwatch.connectors.fulltext import FullTextFetcher

        source.full_text = FullTextFetcher(
            max_bytes=limits.max_bytes, timeout=limits.timeout, concurrency=limits.concurrency,
            user_agent=getattr(settings, "user_agent", "stackwatch"),
        )  # fmt: skip
    return source, Schedule(settings.interval, settings.jitter, settings.max_backoff)
