"""``web:`` and ``log:`` sections."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackwatch.settings.base import Section

__all__ = ["LogSettings", "WebSettings"]


class WebSettings(Section):
    """The service's HTTP server (health, SQL front)."""

    host: str = "127.0.0.1"
    port: int = Field(default=6066, ge=0, le=65535)


class LogSettings(Section):
    """Log level for stackwatch's own loggers; library loggers stay at warning."""

    level: Literal["debug", "info", "warning", "error"] = "info"
