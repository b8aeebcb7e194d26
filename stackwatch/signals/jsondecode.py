"""Bounded JSON decoding of outside bytes: a size limit, strict UTF-8, and errors that say where it went wrong.

    record = decode_json_object(line, limit=MAX_LINE, what="line")      # a dict, or ValueError with the reason
    data = decode_json(payload, limit=MAX_MESSAGE_BYTES, what="message")

Every refusal is a ``ValueError`` whose text names the reason and the place: ``line of 2000000 bytes exceeds
1048576``, ``not UTF-8: invalid start byte at byte 12``, ``not JSON: Expecting value: line 1 column 5 (char 4)``,
``not JSON: nested too deeply``, ``expected a JSON object, got list``. Callers re-raise it as their own error
(a Kafka message as ``MessageError``, a fetched document as ``ParseError``) with the same text.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["decode_json", "decode_json_object", "loads_json"]


def loads_json(text: str) -> Any:
    """The JSON value of ``text``; ValueError ``not JSON: ...`` with the position, or for nesting too deep."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from error
    except RecursionError as error:
        raise ValueError("not JSON: nested too deeply") from error


def decode_json(payload: bytes, *, limit: int, what: str) -> Any:
    """The JSON value of ``payload`` (UTF-8, at most ``limit`` bytes); ValueError with the reason otherwise.

    ``what`` names the payload in the size refusal (``message``, ``line``).
    """
    if len(payload) > limit:
        raise ValueError(f"{what} of {len(payload)} bytes exceeds {limit}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8: {error.reason} at byte {error.start}") from error
    return loads_json(text)


def decode_json_object(payload: bytes, *, limit: int, what: str) -> dict[str, Any]:
    """Like :func:`decode_json`, and the value must be a JSON object."""
    value = decode_json(payload, limit=limit, what=what)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value
