"""Webhook delivery from the DuckDB outbox, one module per job.

- :mod:`.deliverer`: the outbox loop: group pending deliveries into notifications when their group's timer is due
  (``alerting.group_wait`` / ``group_interval`` / ``repeat_interval``; silenced and inhibited alerts are marked,
  not sent), attempt what is due, record the outcome;
- :mod:`.formats`: the JSON body of a notification in each ``webhooks[].format`` (standard, slack, discord);
- :mod:`.sending`: one attempt: the request signed per Standard Webhooks, the POST, the capped read of the answer;
- :mod:`.retry`: when a failed notification is tried again.

The webhook-id is the notification's id, the same on every retry and after a restart; a repeat of a firing alert
(``repeat_interval``) is a new notification, so a new webhook-id, carrying the same alert id. 2xx is success; 410 stops;
429 and 503 honour Retry-After; anything else (timeouts, refused connections, redirects to another host) retries
on :data:`RETRY_SCHEDULE` with jitter until the last try marks it dead::

    deliverer = Deliverer(store_thread, {hook.name: hook for hook in webhooks}, grouping_from(alerting))
    await deliverer.deliver_due()       # or: await deliverer.run() as a background task
"""

from __future__ import annotations

from stackwatch.pipeline.roles.delivery.deliverer import Deliverer, grouping_from
from stackwatch.pipeline.roles.delivery.formats import FORMATS, render_body
from stackwatch.pipeline.roles.delivery.retry import RETRY_SCHEDULE, retry_delay
from stackwatch.pipeline.roles.delivery.sending import MAX_RESPONSE_BYTES

__all__ = [
    "FORMATS",
    "MAX_RESPONSE_BYTES",
    "RETRY_SCHEDULE",
    "Deliverer",
    "grouping_from",
    "render_body",
    "retry_delay",
]
