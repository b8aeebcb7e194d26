"""The security headers on every answer: a Content-Security-Policy that allows no script, no framing, no
sniffing and no referrer. The outermost middleware, so refusals, 404s and errors carry them too."""

from __future__ import annotations

from aiohttp import web as aioweb
from aiohttp.typedefs import Handler

__all__ = ["CSP", "SECURITY_HEADERS", "security_headers"]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@aioweb.middleware
async def security_headers(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
    """aiohttp middleware (the outermost): the security headers on every response, refusals and errors included."""
    try:
        response = await handler(request)
    except aioweb.HTTPException as error:  # 404, 405...: aiohttp turns it into the response
        error.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response
