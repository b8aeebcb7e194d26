"""The offline demo source: sample articles bundled with stackwatch, stamped with the time they are played.

It plays the bundled articles once, ``per_poll`` at a time, so a newcomer sees articles, indicators and alerts
appear within a minute with no network at all.
"""

from __future__ import annotations

from importlib import resources

from stackwatch.connectors.base import Checkpoint, PollResult, Source
from stackwatch.connectors.jsonl import article_from_record, parse_line
from stackwatch.signals.messages import Article, utcnow

__all__ = ["DemoSource", "demo_records"]


def demo_records() -> list[bytes]:
    text = resources.files("stackwatch.demo").joinpath("articles.jsonl").read_bytes()
    return [line for line in text.splitlines() if line.strip()]


class DemoSource(Source):
    """Plays the bundled sample articles once, ``per_poll`` per poll."""

    type = "demo"

    def __init__(self, name: str, *, per_poll: int = 5) -> None:
        super().__init__(name)
        self.per_poll = per_poll
        self._lines = demo_records()

    async def poll(self, checkpoint: Checkpoint) -> PollResult:
        position = int(checkpoint.get("position", 0))
        now = utcnow()
        chunk = self._lines[position : position + self.per_poll]
        articles: list[Article] = []
        for line in chunk:
            record = parse_line(line)
            record.pop("published_at", None)  # played now, so it lands in the current buckets
            articles.append(article_from_record(record, self.name, "demo", now))
        position += len(chunk)
        return PollResult(articles=articles, checkpoint={"position": position}, more=False)
