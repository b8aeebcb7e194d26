"""``stackwatch status`` and ``stackwatch reload``: talk to the running service over its HTTP endpoints.

    stackwatch status                 # readiness, sources, consumer lag, store figures, last alerts
    stackwatch status --json          # the same as one JSON object
    stackwatch reload                 # re-read the config file in the service (same as `kill -HUP <pid>`)

Both use ``web.host:web.port`` of the configuration (``--url`` overrides) and send the token named by
``web.token_env`` when there is one. Exit status 1 when the service does not answer (or refuses the reload).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from stackwatch.pipeline.cli.common import JSONValue, config_option

if TYPE_CHECKING:
    import httpx

__all__ = ["reload", "status"]

_url_option = click.option("--url", default=None, help="The service's base URL (default: http://web.host:web.port).")


def _target(config: str | None, url: str | None) -> tuple[str, dict[str, str]]:
    from stackwatch.errors import ConfigError
    from stackwatch.settings import load_settings

    try:
        base, headers = load_settings(config, secrets=False).web.client_target()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    return (url or base).rstrip("/"), headers


def _get(client: httpx.Client, url: str) -> JSONValue:
    response = client.get(url)
    if response.status_code == 401:
        raise click.ClickException(f"{url}: 401, the service wants a token (set the variable named by web.token_env)")
    if response.status_code not in (200, 503):
        raise click.ClickException(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


def _ago(value: str | None) -> str:
    if not value:
        return "never"
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    seconds = (datetime.now(UTC) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def render_status(ready: Mapping[str, JSONValue], body: Mapping[str, JSONValue]) -> str:
    """The compact terminal summary of ``/readyz`` and ``/api/status``."""
    lines = [
        f"stackwatch: {'ready' if ready.get('ready') else 'NOT READY'} · roles {','.join(body.get('roles', []))} · "
        f"up {body.get('uptime', 0):.0f}s"
    ]
    lines += [f"  ! {reason}" for reason in ready.get("reasons", [])]
    sources = body.get("sources")
    if sources:
        lines.append("sources:")
        for s in sources:
            mark = "ok " if not s.get("consecutive_failures") else "ERR"
            error = f" · {s['last_error']}" if s.get("last_error") and s.get("consecutive_failures") else ""
            lines.append(
                f"  {mark} {s['name']:<24} {s['type']:<11} last ok {_ago(s.get('last_success')):<9} "
                f"items {s.get('items_seen', 0)} rejected {s.get('items_rejected', 0)}{error}"
            )
    lag = body.get("lag") or {}
    if lag:
        parts = [f"{topic.split('.', 1)[-1]}={count}" for group in sorted(lag) for topic, count in lag[group].items()]
        lines.append(f"lag: total {sum(c for g in lag.values() for c in g.values())} ({', '.join(parts)})")
    store = body.get("store")
    if store and "error" in store:
        lines.append(f"store: ERROR {store['error']}")
    elif store:
        deliveries = ", ".join(f"{k} {v}" for k, v in sorted(store.get("deliveries", {}).items())) or "none"
        age = store.get("snapshot_age")
        lines.append(
            f"store: {store['articles']} articles (last stored {_ago(store.get('last_stored'))}), "
            f"{store['dead_letters']} dead letters, {sum(store.get('alerts', {}).values())} alerts, "
            f"deliveries: {deliveries}, snapshot {'none' if age is None else f'{age:.0f}s old'}"
        )
        for alert in store.get("last_alerts", []):  # when it was notified, not the bucket it judged
            notified = alert.get("notified_at")
            when = _ago(notified) if notified else "not sent"
            lines.append(f"  {when:<9} {alert['severity']:<8} {alert['rule']} ({alert['dynamic']}): {alert['message']}")
    return "\n".join(lines)


@click.command()
@config_option
@_url_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the summary.")
def status(config: str | None, url: str | None, as_json: bool) -> None:
    """A compact summary of the running service: readiness, sources, lag, store, last alerts."""
    import httpx

    base, headers = _target(config, url)
    try:
        with httpx.Client(headers=headers, timeout=15.0) as client:
            ready = _get(client, f"{base}/readyz")
            body = _get(client, f"{base}/api/status")
    except httpx.HTTPError as error:
        raise click.ClickException(f"no service answers at {base}: {error}") from None
    if as_json:
        click.echo(json.dumps({"ready": ready, **body}, default=str))
    else:
        click.echo(render_status(ready, body))


@click.command()
@config_option
@_url_option
def reload(config: str | None, url: str | None) -> None:
    """Make the running service re-read its config file (sources, webhooks, alerting) without a restart."""
    import httpx

    base, headers = _target(config, url)
    try:
        response = httpx.post(f"{base}/api/reload", headers=headers, json={}, timeout=30.0)
    except httpx.HTTPError as error:
        raise click.ClickException(f"no service answers at {base}: {error}") from None
    if response.status_code == 401:
        raise click.ClickException("401: the service wants a token (set the variable named by web.token_env)")
    try:
        report = response.json()
    except ValueError:
        raise click.ClickException(f"HTTP {response.status_code}: {response.text[:200]}") from None
    if not report.get("ok"):
        raise click.ClickException(f"reload refused, the service keeps its configuration:\n{report.get('error')}")
    click.echo(f"applied: {', '.join(report['applied']) or 'nothing changed'}")
    if report.get("restart_needed"):
        click.echo(f"changed but needs a restart: {', '.join(report['restart_needed'])}")
