"""``stackwatch sources``: what the configured sources are doing, and trying a feed before adding it.

    stackwatch sources                                   # each source's state (live service, else checkpoints)
    stackwatch sources preview https://x.example/feed.xml saved.json articles.jsonl
    stackwatch sources preview --type hackernews hn.json

``preview`` fetches or reads each input once through the parsers the service uses and prints the articles it
would produce as JSONL (one ``{"input", "error"}`` record for an input that fails). It touches neither the
broker nor the store, and imports no model, so it starts in well under a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from stackwatch.pipeline.cli.common import JSONValue, config_option

__all__ = ["sources"]

log = logging.getLogger("stackwatch")

_FORMATS = ("table", "json")


@click.group(invoke_without_command=True)
@config_option
@click.option("--format", "output_format", type=click.Choice(_FORMATS), default="table")
@click.pass_context
def sources(ctx: click.Context, config: str | None, output_format: str) -> None:
    """List configured sources with their state: last success, last error, items seen, next poll."""
    if ctx.invoked_subcommand is not None:
        return
    from stackwatch.errors import ConfigError
    from stackwatch.pipeline.cli.output import render
    from stackwatch.settings import load_settings

    try:
        settings = load_settings(config, secrets=False)
        base, headers = settings.web.client_target()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    live = _live_states(f"{base}/api/sources", headers)
    if live is not None:
        columns = ["name", "type", "last_success", "last_error", "items_seen", "items_rejected", "next_poll"]
        rows = [[state.get(column) for column in columns] for state in live]
        click.echo(render(columns, rows, output_format))
        return
    from stackwatch.connectors.checkpoints import CheckpointStore

    store = CheckpointStore(settings.state.path / "checkpoints")
    columns = ["name", "type", "enabled", "checkpointed_at", "ids_remembered", "etag", "last_modified"]
    rows = []
    for source in settings.sources:
        path = store.path(source.name)
        try:
            checkpoint: dict[str, JSONValue] = store.load(source.name)
            saved_at = datetime.fromtimestamp(path.stat().st_mtime, UTC) if path.exists() else None
        except (OSError, ValueError) as error:
            checkpoint, saved_at = {"etag": f"unreadable: {error}"}, None
        seen = checkpoint.get("seen")
        rows.append([
            source.name, source.type, source.enabled, saved_at, len(seen) if isinstance(seen, list) else None,
            checkpoint.get("etag"), checkpoint.get("last_modified"),
        ])  # fmt: skip
    if output_format == "table":
        click.echo("(service not answering: state from the checkpoints)", err=True)
    click.echo(render(columns, rows, output_format))


def _live_states(url: str, headers: dict[str, str]) -> list[dict[str, JSONValue]] | None:
    import httpx

    try:
        response = httpx.get(url, headers=headers, timeout=2.0)
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    if isinstance(body, list) and all(isinstance(item, dict) for item in body):
        return body
    return None


@sources.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--type", "kind", default="auto", show_default=True,
    type=click.Choice(["auto", "rss", "jsonfeed", "hackernews", "gdelt", "sec_edgar", "jsonl"]),
    help="How to read the inputs; auto tells feeds, JSON Feed, HN, GDELT and JSONL apart by content.",
)  # fmt: skip
@click.option("--timeout", default=20.0, show_default=True, help="Read timeout per URL, in seconds.")
@click.option("--max-bytes", default=10 * 1024 * 1024, show_default=True, help="Largest document accepted.")
@click.option("--user-agent", default=None, help="User-Agent for URLs (EDGAR needs a name and an e-mail).")
def preview(inputs: Sequence[str], kind: str, timeout: float, max_bytes: int, user_agent: str | None) -> None:
    """Fetch or read each URL or FILE once and print the articles it would produce, as JSONL."""
    failed = asyncio.run(_preview(inputs, kind, timeout, max_bytes, user_agent))
    if failed:
        raise SystemExit(1)


async def _preview(
    inputs: Sequence[str], kind: str, read_timeout: float, max_bytes: int, user_agent: str | None
) -> int:
    from stackwatch.connectors.detect import parse_document
    from stackwatch.connectors.http import DEFAULT_USER_AGENT, HttpOptions, client_for, fetch
    from stackwatch.errors import SourceError
    from stackwatch.signals.messages import utcnow

    options = HttpOptions(timeout=read_timeout, max_bytes=max_bytes, user_agent=user_agent or DEFAULT_USER_AGENT)
    failed = 0
    async with client_for(options) as client:

        async def one(item: str) -> list[dict[str, object]]:
            fetched_at = utcnow()
            try:
                if item.startswith(("http://", "https://")):
                    document = await fetch(client, item, options)
                    if document.retry_after is not None:
                        raise SourceError(f"HTTP {document.status}: retry after {document.retry_after:.0f}s")
                    content, content_type = document.content, document.content_type
                else:
                    content, content_type = _read_file(Path(item), max_bytes), ""
                item_kind = "jsonl" if kind == "auto" and item.endswith(".jsonl") else kind
                articles, rejected = parse_document(
                    content, "preview", fetched_at, kind=item_kind, content_type=content_type
                )
            except SourceError as error:
                return [{"input": item, "error": str(error)}]
            for letter in rejected:
                click.echo(f"{item}: {letter.reason}", err=True)
            return [article.to_dict() for article in articles]

        for records in await asyncio.gather(*(one(item) for item in inputs)):
            failed += sum(1 for record in records if "error" in record)
            for record in records:
                click.echo(json.dumps(record, ensure_ascii=False))
    return failed


def _read_file(path: Path, max_bytes: int) -> bytes:
    from stackwatch.errors import SourceError

    try:
        with path.open("rb") as handle:
            content = handle.read(max_bytes + 1)
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror or error}") from error
    if len(content) > max_bytes:
        raise SourceError(f"{path} is larger than {max_bytes} bytes")
    return content


@click.command()
@config_option
@click.argument("source")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the backfill until it is done.")
def backfill(config: str | None, source: str, wait: bool) -> None:
    """Re-read SOURCE from the start through the running service (duplicates are harmless downstream)."""
    import time

    import httpx
    from tqdm import tqdm

    from stackwatch.errors import ConfigError
    from stackwatch.pipeline.cli.common import cli_settings

    try:
        base, headers = cli_settings(config, secrets=False).web.client_target()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    try:
        response = httpx.post(f"{base}/api/sources/{source}/backfill", headers=headers, json={}, timeout=10.0)
    except httpx.TransportError as error:
        raise click.ClickException(f"no service answering at {base} ({error}); start it, then backfill") from None
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 202:
        raise click.ClickException(str(body.get("error", f"HTTP {response.status_code}")))
    if not wait:
        click.echo(f"backfill of {source} requested")
        return
    produced = 0
    with tqdm(unit="article", desc=f"backfill {source}", disable=None) as bar:  # off when not on a terminal
        while True:
            time.sleep(0.5)
            states = _live_states(f"{base}/api/sources", headers) or []
            state = next((item for item in states if item.get("name") == source), None)
            if state is None:
                raise click.ClickException("the service stopped answering during the backfill")
            now = int(state.get("backfill_items") or 0)
            bar.update(now - produced)
            produced = now
            if state.get("backfill") == "done":
                break
    click.echo(f"backfill of {source} done: {produced} article(s) produced again")
