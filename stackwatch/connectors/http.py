"""The polling base every HTTP source shares: fetch politely, parse, produce only what is new.

    class MyFeedSource(HttpPollingSource):
        type = "my_feed"
        def parse(self, document, fetched_at):   # (articles, rejects); ParseError if hopeless
            return parse_my_feed(document.content, self.name, fetched_at)

A JSON API subclasses :class:`~stackwatch.connectors.json_source.JsonSource` instead and writes only ``items``.

What the base owns, so no source re-implements it:

- conditional GET: ``ETag`` and ``Last-Modified`` stored exactly as received, sent back as ``If-None-Match``
  and ``If-Modified-Since``; a 304 produces nothing;
- ``Retry-After`` on 429 and 503, returned as a :class:`~stackwatch.connectors.base.Retry`;
- connect and read timeouts, a total deadline (a trickling endless response cannot hold a poll forever),
  a response-size cap, a bounded number of redirects;
- the ids already produced, remembered in the checkpoint: a restart or an unchanged feed yields nothing twice;
- a document that cannot be parsed at all becomes one dead letter (once per distinct document), and the
  poll counts as failed.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from stackwatch.connectors.base import Checkpoint, PollResult, Retry, Source
from stackwatch.connectors.text import decode_text
from stackwatch.errors import ParseError, SourceError
from stackwatch.signals.messages import Article, DeadLetter, utcnow

__all__ = [
    "DEFAULT_USER_AGENT",
    "SEEN_LIMIT",
    "Document",
    "HttpOptions",
    "HttpPollingSource",
    "fetch",
    "parse_retry_after",
    "retry_after",
]

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "stackwatch/0.1 (+https://example.invalid/stackwatch)"
SEEN_LIMIT = 5_000
"""How many produced ids a checkpoint remembers (far more than any feed or API page lists at once)."""
PAYLOAD_LIMIT = 4_000
"""How much of a rejected document a dead letter keeps."""


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How politely and how defensively a source fetches."""

    timeout: float = 20.0
    """Read (and write/pool) timeout in seconds; connecting gets at most 10 s of it."""
    max_bytes: int = 10 * 1024 * 1024
    user_agent: str = DEFAULT_USER_AGENT
    max_redirects: int = 5
    deadline: float | None = None
    """Total seconds one fetch may take, body included; default three times ``timeout``."""
    accept: str = "*/*"


@dataclass(frozen=True, slots=True)
class Document:
    """One HTTP answer: 200 with a body, 304 not modified, or 429/503 with the delay asked for."""

    url: str
    status: int
    content: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    retry_after: float | None = None

    @property
    def charset(self) -> str | None:
        for part in self.content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip("\"' ")
        return None


def client_for(options: HttpOptions, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """An httpx client with the options' timeouts, redirect bound and headers."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(options.timeout, connect=min(options.timeout, 10.0)),
        headers={"User-Agent": options.user_agent, "Accept": options.accept},
        follow_redirects=True,
        max_redirects=options.max_redirects,
        transport=transport,
    )


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    options: HttpOptions,
    *,
    params: Mapping[str, str] | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Document:
    """GET ``url`` once. Raises SourceError naming the URL and the reason for anything but 2xx/304/429/503."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = options.deadline if options.deadline is not None else options.timeout * 3
    try:
        async with asyncio.timeout(deadline):
            async with client.stream("GET", url, params=params, headers=headers) as response:
                status = response.status_code
                if status == 304:
                    return Document(url, status)
                if status in (429, 503):
                    return Document(url, status, retry_after=retry_after(response.headers.get("Retry-After")))
                if status >= 400:
                    raise SourceError(f"HTTP {status} from {url}")
                content = await _read_capped(response, options.max_bytes)
                return Document(
                    url=str(response.url),
                    status=status,
                    content=content,
                    content_type=response.headers.get("Content-Type", ""),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                )
    except TimeoutError as error:
        raise SourceError(f"cannot fetch {url}: no complete answer within {deadline:.0f}s") from error
    except httpx.TooManyRedirects as error:
        raise SourceError(f"cannot fetch {url}: more than {options.max_redirects} redirects (a loop?)") from error
    except httpx.HTTPError as error:
        raise SourceError(f"cannot fetch {url}: {type(error).__name__}: {error}") from error


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise SourceError(f"response from {response.url} is larger than {limit} bytes ({declared} declared)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise SourceError(f"response from {response.url} is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after(value: str | None, default: float = 60.0, cap: float = 6 * 3600) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), bounded to ``[0, cap]``;
    ``default`` when it is missing or unreadable."""
    seconds = parse_retry_after(value, cap)
    return default if seconds is None else seconds


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date, RFC 9110) as seconds within ``[0, cap]``; None when it
    is missing or unreadable."""
    if not value:
        return None
    try:
        return min(cap, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(cap, max(0.0, (moment - utcnow()).total_seconds()))


class HttpPollingSource(Source):
    """A source that GETs one URL per poll; subclasses only say how to parse the answer."""

    type = "http"
    accept: ClassVar[str] = "*/*"
    """The ``Accept`` header sent when no options are given."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        options: HttpOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(name)
        self.url = url
        self.params = dict(params or {})
        self.options = options or HttpOptions(accept=self.accept)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def host(self) -> str | None:
        return urlsplit(self.url).hostname

    @abc.abstractmethod
    def parse(self, document: Document, fetched_at: datetime) -> tuple[list[Article], list[DeadLetter]]:
        """Articles and rejected entries from a fetched document; ParseError when it is no document at all."""

    async def setup(self) -> None:
        if self._client is None:
            self._client = client_for(self.options, self._transport)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(self, checkpoint: Checkpoint) -> Document:
        await self.setup()
        assert self._client is not None
        return await fetch(
            self._client,
            self.url,
            self.options,
            params=self.params or None,
            etag=_text_or_none(checkpoint.get("etag")),
            last_modified=_text_or_none(checkpoint.get("last_modified")),
        )

    async def poll(self, checkpoint: Checkpoint) -> PollResult:
        fetched_at = utcnow()
        document = await self.fetch(checkpoint)
        if document.status == 304:
            return PollResult(checkpoint=checkpoint)
        if document.retry_after is not None:
            return PollResult(
                checkpoint=checkpoint,
                retry=Retry(document.retry_after, f"HTTP {document.status} from {self.url}"),
            )
        try:
            articles, rejected = self.parse(document, fetched_at)
        except ParseError as error:
            return self._unparseable(document, checkpoint, str(error))
        seen: list[str] = [item for item in checkpoint.get("seen", []) if isinstance(item, str)]
        known = set(seen)
        fresh: list[Article] = []
        for article in articles:
            if article.id not in known:
                known.add(article.id)
                fresh.append(article)
        seen.extend(article.id for article in fresh)
        new_checkpoint: dict[str, Any] = {
            "etag": document.etag,
            "last_modified": document.last_modified,
            "seen": seen[-SEEN_LIMIT:],
        }
        return PollResult(articles=fresh, rejected=rejected, checkpoint=new_checkpoint)

    def _unparseable(self, document: Document, checkpoint: Checkpoint, reason: str) -> PollResult:
        # Keep the validators of the last good document: a fixed feed must be fetched again in full. The
        # digest keeps the same broken document from being dead-lettered again on every poll.
        digest = hashlib.sha256(document.content).hexdigest()[:32]
        message = f"{document.url}: {reason}"
        letters: Sequence[DeadLetter] = ()
        if document.content and checkpoint.get("rejected_digest") != digest:
            payload = decode_text(document.content[:PAYLOAD_LIMIT], document.charset)
            letters = [DeadLetter(stage="connector", reason=message, payload=payload, origin=self.name)]
        return PollResult(rejected=letters, checkpoint={**checkpoint, "rejected_digest": digest}, error=message)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
