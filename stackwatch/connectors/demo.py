"""The offline demo source: seventeen weeks of AI-compute news written for the demo, played in event-time order.

One poll a tick, not back to back: a batch classified while the next is classified could overtake it, and the
rules ignore an article whose bucket they have already judged.

Each bundled item carries ``age_hours`` rather than a date, and is stamped ``published_at = anchor - age_hours``,
where the anchor is the moment the demo first played. So the demo always ends a few hours before the service
started, and the stream computes its indicators, baselines and alerts over a real past. The anchor is kept in the
checkpoint: a restart stamps every item exactly as before, so a replay stores nothing twice.

Each item names its ``outlet``, and its article's source is ``<source name>:<outlet>``: syndicated copies of one
story arrive from several sources, as on a real wire::

    source = DemoSource("demo", per_poll=20)
    result = await source.poll({})          # the 20 oldest items; result.checkpoint holds the anchor
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources

from stackwatch.connectors.base import Checkpoint, PollResult, Source
from stackwatch.connectors.jsonl import article_from_record, parse_line
from stackwatch.signals.messages import Article, MessageError, parse_time, utcnow

__all__ = ["DEMO_FILE", "DemoSource", "demo_records"]

DEMO_FILE = "timeline.jsonl"


def demo_records() -> list[bytes]:
    """The bundled items, one JSON object per line, oldest first."""
    text = resources.files("stackwatch.demo").joinpath(DEMO_FILE).read_bytes()
    return [line for line in text.splitlines() if line.strip()]


class DemoSource(Source):
    """Plays the bundled timeline once, oldest first, ``per_poll`` items per poll."""

    type = "demo"

    def __init__(self, name: str, *, per_poll: int = 20) -> None:
        super().__init__(name)
        self.per_poll = per_poll
        self._lines = demo_records()

    async def poll(self, checkpoint: Checkpoint) -> PollResult:
        position = int(checkpoint.get("position", 0))
        now = utcnow()
        anchor = _anchor(checkpoint, now)
        chunk = self._lines[position : position + self.per_poll]
        articles = [self._article(line, anchor, now) for line in chunk]
        position += len(chunk)
        return PollResult(articles=articles, checkpoint={"position": position, "anchor": anchor.isoformat()})

    def _article(self, line: bytes, anchor: datetime, now: datetime) -> Article:
        record = parse_line(line)
        record["published_at"] = (anchor - timedelta(hours=float(record.pop("age_hours")))).isoformat()
        source = f"{self.name}:{record.pop('outlet')}"
        return article_from_record(record, source, "demo", now)


def _anchor(checkpoint: Checkpoint, now: datetime) -> datetime:
    """When the demo first played: the checkpoint's, or ``now`` on the first poll (or after a bad checkpoint)."""
    stored = checkpoint.get("anchor")
    if isinstance(stored, str):
        try:
            return parse_time(stored, "anchor")
        except MessageError:
            pass
    return now
