"""Durable per-source checkpoints: one small JSON file per source, replaced atomically.

store = CheckpointStore(Path("data/state/checkpoints"))
store.save("wire", {"etag": '"abc"'})
store.load("wire")      # {'etag': '"abc"'}

Beside each checkpoint, a hint of how many articles were read past it and not yet stored
(``save_unstored``), so that a restart can say that it reads them again.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from stackwatch.connectors.base import Checkpoint

__all__ = ["CheckpointStore"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class CheckpointStore:
    """Checkpoints as JSON files under a directory; a crash mid-write leaves the previous one intact."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, source: str) -> Path:
        return self.directory / f"{_SAFE.sub('_', source)}.json"

    def path(self, source: str) -> Path:
        """Where the checkpoint of ``source`` is kept."""
        return self._file(source)

    def load(self, source: str) -> dict[str, Any]:
        try:
            data = json.loads(self._file(source).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise ValueError(
                f"checkpoint of source {source!r} at {self._file(source)} is unreadable: {error}"
            ) from error
        return data if isinstance(data, dict) else {}

    def save(self, source: str, checkpoint: Checkpoint) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self._file(source)
        temporary = target.with_suffix(".json.tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(dict(checkpoint), handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)

    def _unstored_file(self, source: str) -> Path:
        return self.directory / f"{_SAFE.sub('_', source)}.unstored"

    def save_unstored(self, source: str, count: int) -> None:
        """Note that ``count`` articles were read past the checkpoint and are not stored yet (a hint for the log
        at the next start, so not synced to disk: losing it loses a log line, never data)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if count:
            self._unstored_file(source).write_text(str(count), encoding="ascii")
        else:
            self._unstored_file(source).unlink(missing_ok=True)

    def load_unstored(self, source: str) -> int:
        """The last count :meth:`save_unstored` noted for ``source`` (0 when none, or unreadable)."""
        try:
            return int(self._unstored_file(source).read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            return 0
