"""``kafka:`` section: where the broker is and how topics are named."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator

from stackwatch.settings.base import Section, parse_duration, parse_size

__all__ = ["KafkaSettings"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]
Bytes = Annotated[int, BeforeValidator(parse_size), Field(ge=64 * 1024**2)]


class KafkaSettings(Section):
    """Broker connection and topic layout.

    ``bootstrap_servers`` null or absent starts the embedded (memory-only) broker.
    """

    bootstrap_servers: list[str] | None = None
    app_id: str = Field(default="stackwatch", pattern=r"^[A-Za-z0-9._-]+$")
    topic_prefix: str = Field(default="stackwatch", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1, le=16)
    # Consumer-group join waits about half of this on the embedded broker: keep it short for a quick start.
    session_timeout: Seconds = 10.0
    # A produce request the broker leaves unanswered this long is sent again (Kafka's request.timeout.ms).
    request_timeout: Seconds = Field(default=30.0, ge=1.0, le=600.0)
    embedded_memory_limit: Bytes | None = Field(
        default=1024**3,
        description="the embedded broker keeps every record in memory; over this resident size the service drains"
        " and restarts itself in place with a fresh broker (e.g. 512MB, 2GB; null: never)",
    )

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _split_servers(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            servers = [str(item).removeprefix("kafka://") for item in value]
            for server in servers:
                host, _, port = server.rpartition(":")
                if not host or not port.isdigit():
                    raise ValueError(f"expected host:port, got {server!r}")
            return servers or None
        return value
