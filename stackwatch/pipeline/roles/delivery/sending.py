"""One attempt at a webhook: the signed request, the POST, and what the receiver answered.

    body, headers = signed_request(note, hook, now)     # DeliveryError: a secret named but not loaded
    attempt = Attempt()
    await post(client, str(hook.url), body, headers, hook.timeout, attempt)
    attempt.status, attempt.error, attempt.retry_after

The webhook-id is the notification's id, so a receiver can drop a retried request. Only 307/308 redirects on the same
scheme, host and port are followed, at most :data:`MAX_REDIRECTS`; a response body is read up to
:data:`MAX_RESPONSE_BYTES`, so a hostile receiver cannot make the sender buffer more.
"""

from __future__ import annotations

import json
from datetime import datetime

import httpx
from standardwebhooks import Webhook

from stackwatch.errors import DeliveryError
from stackwatch.pipeline.roles.delivery.formats import render_body
from stackwatch.pipeline.roles.delivery.retry import retry_after_seconds
from stackwatch.settings import WebhookSettings
from stackwatch.storage.outbox import Notification

__all__ = ["MAX_REDIRECTS", "MAX_RESPONSE_BYTES", "Attempt", "post", "signed_headers", "signed_request"]

MAX_RESPONSE_BYTES = 64 * 1024
MAX_REDIRECTS = 3


def signed_headers(webhook_id: str, body: str, hook: WebhookSettings, now: datetime) -> dict[str, str]:
    """The headers of one attempt to send ``body`` (alerts or a digest), signed per Standard Webhooks when the
    webhook has a secret; DeliveryError when its ``secret_env`` names a secret that was not loaded."""
    if hook.secret_env is not None and hook.secret is None:
        raise DeliveryError(f"the secret named by secret_env ({hook.secret_env}) was not loaded; not sending unsigned")
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "user-agent": "stackwatch-webhooks/0.1",
    }
    if hook.secret is not None:
        headers["webhook-signature"] = Webhook(hook.secret.get_secret_value()).sign(webhook_id, now, body)
    return headers


def signed_request(note: Notification, hook: WebhookSettings, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt of a notification."""
    body = json.dumps(render_body(note, hook.format, now), separators=(",", ":"), default=str)
    return body.encode(), signed_headers(note.id, body, hook, now)


class Attempt:
    """What one attempt came to, filled in as it goes (a timeout keeps the status already received)."""

    __slots__ = ("error", "retry_after", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.retry_after: float | None = None
        self.error: str | None = None


async def post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], limit: float, result: Attempt
) -> None:
    """POST, following at most a few 307/308 redirects on the same scheme, host and port; fill ``result``."""
    target = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        async with client.stream("POST", target, content=body, headers=headers, timeout=limit) as response:
            result.status = status = response.status_code
            excerpt = await _read_capped(response)
            if status in (307, 308) and "location" in response.headers:
                following = target.join(response.headers["location"])
                if (following.scheme, following.host, following.port) != (target.scheme, target.host, target.port):
                    result.error = f"HTTP {status}: redirect to another host ({following.host}) not followed"
                    return
                target = following
                continue
            if status in (429, 503):
                result.retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if not 200 <= status < 300:
                result.error = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
            return
    result.error = f"more than {MAX_REDIRECTS} redirects"


async def _read_capped(response: httpx.Response) -> str:
    """Read at most MAX_RESPONSE_BYTES of the body (a hostile receiver cannot make us buffer more)."""
    data = bytearray()
    async for chunk in response.aiter_raw():
        data += chunk[: MAX_RESPONSE_BYTES - len(data)]
        if len(data) >= MAX_RESPONSE_BYTES:
            break
    return bytes(data[:200]).decode("utf-8", "replace").strip()
