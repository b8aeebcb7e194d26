"""The store's commands: ad-hoc SQL, Parquet export, rebuild, retention.

    stackwatch sql "SELECT * FROM daily_dynamic_volume ORDER BY day DESC LIMIT 10" --format csv
    stackwatch export --parquet export/
    stackwatch rebuild                # recompute every derived indicator from stored articles
    stackwatch retention              # drop old bodies now, checkpoint, print size and row counts

``sql`` goes through the running service (``POST /api/sql``); when none answers it opens the file read-only,
and when the service holds the file it falls back to the snapshot file. The others need the file itself:
stop the service first (DuckDB lets one process write a file).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import httpx

from stackwatch.errors import ConfigError, QueryRefused, StoreError
from stackwatch.pipeline.cli_common import cli_settings, config_option
from stackwatch.pipeline.output import render
from stackwatch.pipeline.sink import build_derivation
from stackwatch.settings import Settings
from stackwatch.storage.store import QueryResult, Store

__all__ = ["export", "rebuild", "retention", "sql"]


def _open_for_writing(settings: Settings) -> Store:
    try:
        return Store.open(
            settings.storage.path, derivation=build_derivation(settings), memory_limit=settings.storage.memory_limit
        )
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    except StoreError as error:
        raise click.ClickException(f"{error} (is the service running? stop it first)") from None


def _query_file(settings: Settings, query: str) -> QueryResult:
    errors = []
    for path in (settings.storage.path, settings.storage.snapshot_file()):
        if not path.exists():
            errors.append(f"no file {path}")
            continue
        try:
            with Store.open(path, read_only=True) as store:
                return store.query(query)
        except QueryRefused:
            raise
        except StoreError as error:
            if "query failed" in str(error):
                raise
            errors.append(str(error).splitlines()[0])
    raise StoreError("; ".join(errors))


@click.command()
@config_option
@click.argument("query")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
def sql(config: str | None, query: str, output_format: str) -> None:
    """Run one read-only query: through the running service, else on the DuckDB file (or its snapshot)."""
    settings = cli_settings(config, secrets=False)
    try:
        base, headers = settings.web.client_target()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    url = f"{base}/api/sql"
    try:
        response: httpx.Response | None = httpx.post(url, json={"sql": query}, headers=headers, timeout=60.0)
    except httpx.TransportError:
        response = None
    if response is not None and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if response.status_code != 200:
            raise click.ClickException(str(body.get("error", body)))
        click.echo(render(body["columns"], body["rows"], output_format))
        return
    try:
        result = _query_file(settings, query)
    except QueryRefused as error:
        raise click.ClickException(f"refused: {error}") from None
    except StoreError as error:
        raise click.ClickException(f"no service answering at {url} and no readable store: {error}") from None
    click.echo(render(result.columns, result.rows, output_format))


@click.command()
@config_option
@click.option("--parquet", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
def export(config: str | None, directory: Path) -> None:
    """Export the tables as Parquet, one directory per table, partitioned by day."""
    from tqdm import tqdm

    from stackwatch.storage.maintenance import EXPORTS, export_parquet

    settings = cli_settings(config, secrets=False)
    with (
        _open_for_writing(settings) as store,
        tqdm(total=len(EXPORTS), unit="table", desc="export", disable=None) as bar,
    ):
        try:
            counts = export_parquet(store, directory, lambda table: bar.update(1))
        except StoreError as error:
            raise click.ClickException(str(error)) from None
    for table, rows in counts.items():
        click.echo(f"{table}: {rows} rows")


@click.command()
@config_option
def rebuild(config: str | None) -> None:
    """Recompute every derived indicator from the stored articles (the same numbers the stream produced)."""
    from tqdm import tqdm

    settings = cli_settings(config, secrets=False)
    with _open_for_writing(settings) as store:
        bar = tqdm(total=0, unit="bucket", desc="rebuild", disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            written = store.rebuild(progress)
        except StoreError as error:
            raise click.ClickException(str(error)) from None
        finally:
            bar.close()
    click.echo(f"rebuilt {written} indicator rows in {settings.storage.path}")


@click.command()
@config_option
def retention(config: str | None) -> None:
    """Apply retention now: drop old bodies and dead letters, checkpoint, print file size and row counts."""
    from stackwatch.storage.maintenance import apply_retention

    settings = cli_settings(config, secrets=False)
    keep = settings.storage.retention
    with _open_for_writing(settings) as store:
        try:
            report = apply_retention(store, body_days=keep.body_days, dead_letter_days=keep.dead_letter_days)
        except StoreError as error:
            raise click.ClickException(str(error)) from None
    click.echo(
        json.dumps(
            {
                "bodies_dropped": report.bodies_dropped,
                "dead_letters_dropped": report.dead_letters_dropped,
                "file_bytes": report.file_bytes,
                "rows": report.row_counts,
            },
            indent=1,
        )
    )
