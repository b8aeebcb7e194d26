"""What every connector is: a class with a lifecycle, a cursor as its state, articles and rejects as output.

    class MySource(Source):
        async def setup(self) -> None: ...                        # open clients, check settings
        async def poll(self, checkpoint) -> PollResult: ...       # fetch what is new since the checkpoint
        async def stop(self) -> None: ...                         # close clients

The scheduler (:mod:`stackwatch.connectors.scheduler`) calls ``poll``, hands the articles to a publisher,
and stores ``PollResult.checkpoint`` only after the publisher returned (the broker acknowledged them).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stackwatch.signals.messages import Article, DeadLetter

if TYPE_CHECKING:
    from stackwatch.connectors.fulltext import FullTextFetcher

__all__ = ["Checkpoint", "PollResult", "Publisher", "Retry", "Source"]

Checkpoint = Mapping[str, Any]
"""A source's cursor, JSON-ready: ETag, last modified, ids seen, file offsets..."""

Publisher = Callable[[Sequence[Article], Sequence[DeadLetter]], Awaitable[None]]
"""Sends articles and rejects on; returns once the broker acknowledged every one of them."""


@dataclass(frozen=True, slots=True)
class Retry:
    """In a PollResult: asks the scheduler to come back after ``after`` seconds (e.g. Retry-After)."""

    after: float
    reason: str


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll found, and the checkpoint to store once it has been published."""

    articles: Sequence[Article] = ()
    rejected: Sequence[DeadLetter] = ()
    checkpoint: Checkpoint = field(default_factory=dict)
    retry: Retry | None = None
    more: bool = False
    """True when the source has more ready right now (a backlog): poll again without waiting."""
    error: str | None = None
    """Set when the poll failed after fetching something (e.g. a document that is not a feed): the rejects are
    published and the checkpoint stored, then the scheduler counts a failure and backs off."""


class Source(abc.ABC):
    """A news source. Subclasses implement ``poll``; ``setup`` and ``stop`` are optional."""

    type: str = "abstract"

    def __init__(self, name: str) -> None:
        self.name = name
        self.full_text: FullTextFetcher | None = None
        """Set by ``build_source`` when the source's config asks for full text; the scheduler applies it."""

    @property
    def host(self) -> str | None:
        """The network host this source talks to, for per-host politeness; None when it reads local data."""
        return None

    async def setup(self) -> None:  # noqa: B027 (optional hook, empty on purpose)
        """Open clients and check settings; called once before the first poll."""

    @abc.abstractmethod
    async def poll(self, checkpoint: Checkpoint) -> PollResult:
        """Fetch what is new since ``checkpoint``. Raise SourceError for a failed fetch."""

    async def stop(self) -> None:  # noqa: B027 (optional hook, empty on purpose)
        """Close clients; called once, also after a failed setup."""
