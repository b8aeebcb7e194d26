"""A JSONL file, or a directory of ``*.jsonl`` files, read and followed as it grows.

The checkpoint holds a byte offset per file, so a restart resumes after the last published line. A line that
is not a valid record becomes a dead letter with its reason; the file goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from stackwatch.connectors.base import Checkpoint, PollResult, Source
from stackwatch.connectors.jsonl import MAX_LINE, article_from_record, parse_line
from stackwatch.errors import SourceError
from stackwatch.signals.messages import Article, DeadLetter, utcnow

__all__ = ["FileSource"]


def _skip_to_newline(handle: BinaryIO, chunk: int = 1024 * 1024) -> int | None:
    """Bytes up to and including the next newline, read in chunks; None if the file ends first."""
    skipped = 0
    while True:
        block = handle.read(chunk)
        if not block:
            return None
        newline = block.find(b"\n")
        if newline >= 0:
            handle.seek(newline + 1 - len(block), 1)  # back to just after the newline: the next line is kept
            return skipped + newline + 1
        skipped += len(block)


class FileSource(Source):
    """Follows ``path`` (a file or a directory of ``*.jsonl``), ``max_lines`` lines per poll at most."""

    type = "file"

    def __init__(self, name: str, path: Path, *, max_lines: int = 1000) -> None:
        super().__init__(name)
        self.path = path
        self.max_lines = max_lines

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(self.path.glob("*.jsonl"))
        if self.path.exists():
            return [self.path]
        raise SourceError(f"{self.path} does not exist")

    def _reject(self, reason: str, line: bytes) -> DeadLetter:
        return DeadLetter(
            stage="connector", reason=reason, payload=line[:4000].decode("utf-8", "replace"), origin=self.name
        )

    async def poll(self, checkpoint: Checkpoint) -> PollResult:
        offsets: dict[str, int] = dict(checkpoint.get("offsets", {}))
        articles: list[Article] = []
        rejected: list[DeadLetter] = []
        fetched_at = utcnow()
        budget = self.max_lines
        more = False
        for file in self._files():
            key = str(file)
            offset = offsets.get(key, 0)
            try:
                size = file.stat().st_size
                if size < offset:
                    offset = 0  # truncated or replaced: read it again from the start
                with file.open("rb") as handle:
                    handle.seek(offset)
                    while budget > 0:
                        line = handle.readline(MAX_LINE + 1)
                        if len(line) > MAX_LINE and not line.endswith(b"\n"):
                            # An overlong line is skipped to its end without ever holding it in memory.
                            skipped = _skip_to_newline(handle)
                            if skipped is None:
                                break  # its end is not written yet: come back for it
                            rejected.append(
                                self._reject(f"{file.name}@{offset}: line longer than {MAX_LINE} bytes", line)
                            )
                            offset += len(line) + skipped
                            budget -= 1
                            continue
                        if not line.endswith(b"\n"):
                            break  # nothing, or a line still being written
                        line_number_hint = f"{file.name}@{offset}"
                        offset += len(line)
                        budget -= 1
                        if not line.strip():
                            continue
                        try:
                            articles.append(article_from_record(parse_line(line), self.name, "file", fetched_at))
                        except ValueError as error:
                            rejected.append(self._reject(f"{line_number_hint}: {error}", line))
                    more = more or (budget == 0 and offset < size)
            except OSError as error:
                raise SourceError(f"cannot read {file}: {error}") from error
            offsets[key] = offset
        return PollResult(articles=articles, rejected=rejected, checkpoint={"offsets": offsets}, more=more)
