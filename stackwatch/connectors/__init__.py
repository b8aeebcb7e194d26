"""Connectors: sources that fetch and parse news into :class:`~stackwatch.signals.messages.Article` messages.

Source types register by name in :data:`SOURCE_TYPES`; ``build_source`` turns a ``sources:`` entry of the
configuration into a ready :class:`Source`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stackwatch.connectors.base import Checkpoint, PollResult, Publisher, Retry, Source
from stackwatch.connectors.checkpoints import CheckpointStore
from stackwatch.connectors.demo import DemoSource
from stackwatch.connectors.file import FileSource
from stackwatch.connectors.rss import RssSource, parse_feed
from stackwatch.connectors.scheduler import Schedule, Scheduler, SourceState

__all__ = [
    "SOURCE_TYPES",
    "Checkpoint",
    "CheckpointStore",
    "DemoSource",
    "FileSource",
    "PollResult",
    "Publisher",
    "Retry",
    "RssSource",
    "Schedule",
    "Scheduler",
    "Source",
    "SourceState",
    "build_source",
    "parse_feed",
]


def _rss(settings: Any) -> Source:
    """RSS 0.9x/2.0, Atom or RDF feed over HTTP(S): ``url``, ``timeout``, ``max_bytes``, ``user_agent``."""
    return RssSource(
        settings.name, str(settings.url), timeout=settings.timeout, max_bytes=settings.max_bytes,
        user_agent=settings.user_agent,
    )


def _file(settings: Any) -> Source:
    """A JSONL file or a directory of ``*.jsonl`` files, followed as it grows: ``path``."""
    return FileSource(settings.name, settings.path)


def _demo(settings: Any) -> Source:
    """The bundled sample articles, played once, ``per_poll`` at a time: the offline demo."""
    return DemoSource(settings.name, per_poll=settings.per_poll)


SOURCE_TYPES: dict[str, Callable[[Any], Source]] = {"rss": _rss, "file": _file, "demo": _demo}


def build_source(settings: Any) -> tuple[Source, Schedule]:
    """The source and schedule for one ``sources:`` entry of the configuration."""
    source = SOURCE_TYPES[settings.type](settings)
    return source, Schedule(settings.interval, settings.jitter, settings.max_backoff)
