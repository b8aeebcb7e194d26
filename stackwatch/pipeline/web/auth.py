"""The access token: when ``web.token_env`` names one, every path but the probes requires it.

A client sends ``Authorization: Bearer <token>``; a browser link may carry ``?token=<token>`` once, which sets an
HttpOnly, SameSite=Strict cookie for the dashboard's next pages. The comparison takes constant time. A missing or
wrong token is a 401 ``{"error": ...}``.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection

from aiohttp import web as aioweb
from aiohttp.typedefs import Handler, Middleware

__all__ = ["OPEN_PATHS", "TOKEN_COOKIE", "token_guard"]

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""The probes: an orchestrator asks them without the token."""
TOKEN_COOKIE = "stackwatch_token"  # noqa: S105 (a cookie name, not a secret)


def token_guard(token: str | None, open_paths: Collection[str] = OPEN_PATHS) -> Middleware:
    """aiohttp middleware: ``token`` on every path but ``open_paths`` (nothing is asked when ``token`` is None)."""

    @aioweb.middleware
    async def guard(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        if token is None or request.path in open_paths:
            return await handler(request)
        given = request.query.get("token") or request.cookies.get(TOKEN_COOKIE, "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header.removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return aioweb.json_response({"error": "missing or wrong token (Authorization: Bearer ...)"}, status=401)
        response = await handler(request)
        if request.query.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return guard
