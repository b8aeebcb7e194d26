"""Each source's last poll outcomes, kept on disk beside its checkpoint so that a restart still knows them.

    log = PollLog.beside(CheckpointStore(Path("data/state/checkpoints")))
    log.save("wire", PollStatus(last_success=None, failing_since=t, consecutive_failures=3, last_error="HTTP 503"))
    log.load("wire")          # the PollStatus saved last, or None
    log.load_all(["wire"])    # {"wire": PollStatus(...)}

The scheduler saves a source's status after every poll; the source-health watcher reads it, also from another
process on the same host. One small JSON file per source, replaced atomically (not synced: a status lost to a power
cut only delays a ``failing`` alert until the next failures, it loses no data).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from stackwatch.connectors.checkpoints import CheckpointStore
from stackwatch.signals.messages import MessageError, parse_time

__all__ = ["PollLog", "PollStatus"]

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class PollStatus:
    """A source's poll outcomes so far: its last success, and since when its polls have failed in a row (None
    when its last poll did not fail)."""

    last_success: datetime | None = None
    failing_since: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    source: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "source": self.source,
                "last_success": self.last_success.isoformat() if self.last_success else None,
                "failing_since": self.failing_since.isoformat() if self.failing_since else None,
                "consecutive_failures": self.consecutive_failures,
                "last_error": self.last_error,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> PollStatus:
        """Raises ValueError (or MessageError, a ValueError) for a document that is not a poll status."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        failures = data.get("consecutive_failures", 0)
        error = data.get("last_error")
        return cls(
            last_success=_time(data.get("last_success"), "last_success"),
            failing_since=_time(data.get("failing_since"), "failing_since"),
            consecutive_failures=failures if isinstance(failures, int) and failures >= 0 else 0,
            last_error=error if isinstance(error, str) else None,
            source=str(data.get("source") or ""),
        )


def _time(value: object, name: str) -> datetime | None:
    return None if value is None else parse_time(value, name)


class PollLog:
    """Poll statuses as JSON files under a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def beside(cls, checkpoints: CheckpointStore) -> PollLog:
        """The log kept in a ``polls`` folder of the checkpoints' directory."""
        return cls(checkpoints.directory / "polls")

    def _file(self, source: str) -> Path:
        return self.directory / f"{_SAFE.sub('_', source)}.json"

    def save(self, source: str, status: PollStatus) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self._file(source)
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(status.to_json(), encoding="utf-8")
        os.replace(temporary, target)

    def load(self, source: str) -> PollStatus | None:
        """The status saved last for ``source``; None when there is none or it is unreadable (logged)."""
        path = self._file(source)
        try:
            return PollStatus.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, MessageError) as error:
            log.warning("poll status of source %r at %s is unreadable, taken as unknown: %s", source, path, error)
            return None

    def load_all(self, sources: list[str]) -> dict[str, PollStatus]:
        """The saved statuses of ``sources`` (those without one are left out)."""
        statuses = {source: self.load(source) for source in sources}
        return {source: status for source, status in statuses.items() if status is not None}
