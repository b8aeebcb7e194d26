"""Messages on the wire: UTF-8 JSON of each message's ``to_dict``. Bad bytes raise MessageError with the reason."""

from __future__ import annotations

import json
from typing import Any, Protocol, TypeVar

from stackwatch.signals.jsondecode import decode_json
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
    try:
        data = decode_json(payload, limit=MAX_MESSAGE_BYTES, what="message")
    except ValueError as error:
        raise MessageError(str(error)) from error
    return kind.from_dict(data)  # type: ignore[attr-defined,no-any-return]
