"""Log records as JSON lines when stderr is not a terminal (journald, Docker, files), readable text when it is.

    formatter = log_formatter("auto", sys.stderr)     # or "json" / "text"
    handler.setFormatter(formatter)

A JSON line holds ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and, when there is one, ``exc``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import IO, Any

__all__ = ["ENV_LEVEL", "JsonFormatter", "log_formatter", "log_level"]

ENV_LEVEL = "STACKWATCH_LOG_LEVEL"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_formatter(kind: str, stream: IO[str] | None) -> logging.Formatter:
    """``json``, ``text``, or ``auto``: JSON unless ``stream`` is a terminal."""
    if kind == "auto":
        kind = "text" if stream is not None and stream.isatty() else "json"
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


def log_level(configured: str) -> str:
    """``$STACKWATCH_LOG_LEVEL`` when set to a known level, else the configured one (upper case)."""
    override = os.environ.get(ENV_LEVEL, "").strip().upper()
    return override if override in {"DEBUG", "INFO", "WARNING", "ERROR"} else configured.upper()
