"""Messages on the wire: UTF-8 JSON of each message's ``to_dict``. Bad bytes raise MessageError with the reason."""

from __future__ import annotations

import json
from typing import Any, Protocol, TypeVar

from stackwatch.signals.messages import MessageError

__all__ = ["MAX_MESSAGE_BYTES", "decode", "encode"]

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class _Encodable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class _Decodable(Protocol):
    @classmethod
    def from_dict(cls, data: object) -> Any: ...


M = TypeVar("M")


def encode(message: _Encodable) -> bytes:
    return json.dumps(message.to_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(kind: type[M], payload: bytes | None) -> M:
    """Decode ``payload`` as a ``kind`` message (a class with ``from_dict``)."""
    if payload is None:
        raise MessageError("empty message (no value)")
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise MessageError(f"not UTF-8 at byte {error.start}") from error
    except (json.JSONDecodeError, RecursionError) as error:
        raise MessageError(f"not JSON: {error}") from error
    return kind.from_dict(data)  # type: ignore[attr-defined,no-any-return]
