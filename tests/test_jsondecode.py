"""Bounded JSON decoding: one decoder for wire messages and JSONL lines, each caller keeping its own error type."""

from __future__ import annotations

import pytest

from stackwatch.connectors.jsonl import MAX_LINE, parse_line
from stackwatch.pipeline.kafka.codec import MAX_MESSAGE_BYTES, decode
from stackwatch.signals.jsondecode import decode_json, decode_json_object
from stackwatch.signals.messages import Article, MessageError


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b" " * 1_000_001, r"^line of 1000001 bytes exceeds 1000000$"),
        (b'{"a": "\xff"}', r"^not UTF-8: invalid start byte at byte 7$"),
        (b'{"a": }', r"^not JSON: Expecting value: line 1 column 7 \(char 6\)$"),
        (b"[" * 100_000 + b"]" * 100_000, r"^not JSON: nested too deeply$"),
    ],
)
def test_refusals_name_the_reason_and_where(payload: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_json(payload, limit=1_000_000, what="line")


def test_any_json_value_decodes_and_an_object_can_be_required() -> None:
    assert decode_json(b"[1, 2]", limit=10, what="line") == [1, 2]
    assert decode_json_object(b'{"a": 1}', limit=10, what="line") == {"a": 1}
    with pytest.raises(ValueError, match=r"^expected a JSON object, got list$"):
        decode_json_object(b"[1, 2]", limit=10, what="line")


def test_a_wire_message_and_a_jsonl_line_are_refused_for_the_same_reasons_with_their_own_errors() -> None:
    bad = b'{"title": "\xc3"}'
    with pytest.raises(MessageError, match=r"^not UTF-8: invalid continuation byte at byte 11$"):
        decode(Article, bad)
    with pytest.raises(ValueError, match=r"^not UTF-8: invalid continuation byte at byte 11$") as refused:
        parse_line(bad)
    assert not isinstance(refused.value, MessageError)
    with pytest.raises(MessageError, match=rf"^message of {MAX_MESSAGE_BYTES + 1} bytes exceeds {MAX_MESSAGE_BYTES}$"):
        decode(Article, b" " * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(ValueError, match=rf"^line of {MAX_LINE + 1} bytes exceeds {MAX_LINE}$"):
        parse_line(b" " * (MAX_LINE + 1))
    with pytest.raises(MessageError, match=r"^empty message"):
        decode(Article, None)
