"""Reading a request and answering in JSON: the bounded body, the query fields, the refusal and the answer.

A handler raises :class:`BadRequest` with a message that names the bad field; the API turns it into
``{"error": message}`` with its status. Every body is read whole (however many TCP writes it came in) up to a
limit of the endpoint's own, below the browser guard's :data:`~stackwatch.pipeline.web.guard.MAX_BODY`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import cast

from aiohttp import web as aioweb
from faust.web import Request, Response

from stackwatch.storage.sandbox import plain

__all__ = ["BadRequest", "flag", "json_answer", "json_body", "read_body", "refusal", "whole_number"]

JSON = "application/json"
_MAX_DIGITS = 18  # int() of a longer string costs more than it can mean


class BadRequest(ValueError):
    """A request the API refuses: ``status`` and a message for the ``error`` field (naming the bad field)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_answer(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """``body`` as a JSON response (UTF-8; dates, decimals and the store's other values as :func:`plain` makes
    them)."""
    payload = json.dumps(body, default=plain, ensure_ascii=False).encode("utf-8")
    answer = aioweb.Response(body=payload, content_type=JSON, status=status, headers=headers)
    return cast(Response, answer)  # Faust's aiohttp driver serves aiohttp's responses


def refusal(error: BadRequest) -> Response:
    """A :class:`BadRequest` as its JSON answer."""
    return json_answer({"error": str(error)}, error.status)


async def read_body(request: aioweb.Request, limit: int) -> bytes:
    """The whole request body, however many TCP writes it came in; BadRequest (413) above ``limit`` bytes."""
    too_large = BadRequest(f"request body larger than {limit} bytes", 413)
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


async def json_body(request: Request, limit: int) -> object:
    """The request's JSON body, read whole up to ``limit`` bytes; BadRequest (400, 413) otherwise.

    ``NaN`` and ``Infinity`` are refused: they are not JSON.
    """
    raw = await read_body(cast(aioweb.Request, request), limit)  # Faust's aiohttp driver hands aiohttp's request
    try:
        value: object = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadRequest(f"request body is not JSON: {error}") from None
    return value


def flag(query: Mapping[str, str], name: str) -> bool:
    """A yes/no query field (``1``, ``true``, ``yes``; ``0``, ``false``, ``no`` or empty); absent is no.

    >>> flag({"all": "1"}, "all"), flag({}, "all")
    (True, False)
    """
    value = query.get(name, "0").lower()
    if value not in ("", "0", "1", "false", "true", "no", "yes"):
        raise BadRequest(f"{name}: expected 1 or 0, got {value[:40]!r}")
    return value in ("1", "true", "yes")


def whole_number(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A query field holding a whole number from ``low`` to ``high`` (ASCII digits only); ``default`` when absent.

    >>> whole_number({"limit": "50"}, "limit", 20, 1, 10_000)
    50
    """
    text = query.get(name, str(default))
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS else None
    if number is None or not low <= number <= high:
        raise BadRequest(f"{name}: expected a whole number from {low} to {high}, got {text[:40]!r}")
    return number
