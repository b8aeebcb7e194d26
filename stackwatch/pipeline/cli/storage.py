"""The store's commands: ad-hoc SQL, Parquet export, rebuild, retention.

    stackwatch sql "SELECT * FROM daily_dynamic_volume ORDER BY day DESC LIMIT 10" --format csv
    stackwatch export --parquet export/
    stackwatch rebuild                # recompute every derived indicator from stored articles
    stackwatch retention              # drop old bodies now, checkpoint, print size and row counts

``sql`` goes through the running service (``POST /api/sql``); when nothing listens there it runs the query
itself, sandboxed as the service does (:mod:`stackwatch.storage.query`), on the file, or on the snapshot file
when a service holds the file. ``export`` (and ``rules backtest``) read the file, or its snapshot while a service
holds the file, and say which on stderr (:func:`read_store`); they never write either. ``rebuild`` and
``retention`` write the file itself: stop the service first (DuckDB lets one process write a file). They show
their progress on stderr (:func:`step_progress`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
import httpx

from stackwatch.errors import ConfigError, QueryFailed, QueryRefused, StoreError
from stackwatch.pipeline.cli.common import cli_settings, config_option
from stackwatch.pipeline.cli.output import render
from stackwatch.pipeline.roles.derivation import build_derivation
from stackwatch.pipeline.web.sqlfront import sql_limits
from stackwatch.settings import Settings
from stackwatch.storage.query import QueryAnswer, QueryUnavailable, run_query
from stackwatch.storage.reading import open_for_reading
from stackwatch.storage.store import Store

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

__all__ = ["export", "read_store", "rebuild", "retention", "sql", "step_progress"]

CONNECT_TIMEOUT = 5.0
ANSWER_GRACE = 60.0
"""Seconds the CLI waits for the service beyond ``sql.time_limit`` (a fresh snapshot, the process's start)."""


@contextmanager
def step_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A store job's ``progress(done, total)`` on stderr: a progress bar when stderr is a terminal, else a line per
    step (``rebuild: 3/24 steps``), so a log shows how far a long job got."""
    stream = click.get_text_stream("stderr")
    if not stream.isatty():
        yield lambda done, total: click.echo(f"{label}: {done}/{total} steps", err=True)
        return
    with ExitStack() as stack:
        bars: list[ProgressBar[int]] = []

        def update(done: int, total: int) -> None:
            if not bars:  # the total is known once the job has planned its steps
                bar = click.progressbar(length=total, label=label, file=stream, show_pos=True, show_eta=True)
                bars.append(stack.enter_context(bar))
            bars[0].update(done - bars[0].pos)

        yield update


def _open_for_writing(settings: Settings, *, rebuild_pending: bool = True) -> Store:
    try:
        derivation = build_derivation(settings.taxonomy(), settings.entities, settings.indicators)
        return Store.open(
            settings.storage.path,
            derivation=derivation,
            memory_limit=settings.storage.memory_limit,
            rebuild_pending=rebuild_pending,
        )
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    except StoreError as error:
        raise click.ClickException(f"{error} (is the service running? stop it first)") from None


@contextmanager
def read_store(settings: Settings, command: str, *, export_to: Path | None = None) -> Iterator[Store]:
    """The store opened read-only for ``command``: the file, else (a running service holds it) its snapshot, with
    a line on stderr saying which (and the snapshot's age). ClickException when neither can be read, naming both
    files and why; a StoreError inside the block is a ClickException too."""
    storage = settings.storage
    snapshot = storage.snapshot_file()
    with ExitStack() as stack:
        try:
            source = stack.enter_context(
                open_for_reading(storage.path, snapshot, memory_limit=storage.memory_limit, export_to=export_to)
            )
        except StoreError as error:
            hint = ""
            if not snapshot.exists():
                every = "is null" if storage.snapshot_interval is None else f"is {storage.snapshot_interval:g}s"
                hint = (
                    f" (a running service publishes the snapshot every storage.snapshot_interval, which {every};"
                    ' a query through it, such as stackwatch sql "SELECT 1", writes one now)'
                )
            raise click.ClickException(f"{command}: {error}{hint}") from None
        click.echo(f"{command}: reading {source.describe()}", err=True)
        try:
            yield source.store
        except StoreError as error:
            raise click.ClickException(f"{command}: {error}") from None


def _query_file(settings: Settings, query: str) -> QueryAnswer:
    """The query, sandboxed, on the store file, else (held by a running service) on its snapshot."""
    limits = sql_limits(settings.sql)
    errors = []
    for path in (settings.storage.path, settings.storage.snapshot_file()):
        if not path.exists():
            errors.append(f"no file {path}")
            continue
        try:
            return run_query(path, query, limits)
        except QueryUnavailable as error:  # only a file that cannot be opened sends us to the next one
            errors.append(str(error))
    raise QueryUnavailable("; ".join(errors))


def _echo(answer: QueryAnswer, output_format: str) -> None:
    click.echo(render(answer.columns, answer.rows, output_format))
    if answer.truncated:
        click.echo(
            f"(truncated after {len(answer.rows)} rows: sql.max_rows, or an answer's size cap, was reached)", err=True
        )


@click.command()
@config_option
@click.argument("query")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
def sql(config: str | None, query: str, output_format: str) -> None:
    """Run one read-only query: through the running service, else sandboxed on the DuckDB file (or its snapshot).

    A query that the service stopped or that did not answer in time is not run again anywhere else.
    """
    settings = cli_settings(config, secrets=False)
    try:
        base, headers = settings.web.client_target()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    url = f"{base}/api/sql"
    wait = httpx.Timeout(settings.sql.time_limit + ANSWER_GRACE, connect=CONNECT_TIMEOUT)
    try:
        response: httpx.Response | None = httpx.post(url, json={"sql": query}, headers=headers, timeout=wait)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        response = None  # nothing listens there: the query did not run
    except httpx.TransportError as error:
        raise click.ClickException(
            f"no answer from {url} ({type(error).__name__}); the query is not run again elsewhere"
        ) from None
    if response is not None and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if response.status_code != 200:
            raise click.ClickException(str(body.get("error", body)))
        _echo(QueryAnswer(body["columns"], body["rows"], bool(body.get("truncated"))), output_format)
        return
    try:
        answer = _query_file(settings, query)
    except QueryRefused as error:
        raise click.ClickException(f"refused: {error}") from None
    except QueryFailed as error:
        raise click.ClickException(str(error)) from None
    except StoreError as error:
        raise click.ClickException(f"no service answering at {url} and no readable store: {error}") from None
    _echo(answer, output_format)


@click.command()
@config_option
@click.option("--parquet", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
def export(config: str | None, directory: Path) -> None:
    """Export the tables as Parquet, one directory per table, partitioned by day (a month of a table a step).

    Reads the store file, or its snapshot while the service runs (which one, and its age, on stderr)."""
    from stackwatch.storage.maintenance import export_parquet

    settings = cli_settings(config, secrets=False)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.ClickException(f"export: cannot create {directory}: {error}") from None
    with read_store(settings, "export", export_to=directory) as store, step_progress("export") as progress:
        counts = export_parquet(store, directory, progress)
    for table, rows in counts.items():
        click.echo(f"{table}: {rows} rows")


@click.command()
@config_option
def rebuild(config: str | None) -> None:
    """Recompute every derived indicator from the stored articles (the same numbers the stream produced), a chunk
    of days a step, then the baselines; each step matches its articles' entities again with the configured
    gazetteer, so an entity added to ``entities:`` applies to history."""
    settings = cli_settings(config, secrets=False)
    with _open_for_writing(settings, rebuild_pending=False) as store, step_progress("rebuild") as progress:
        try:
            written = store.rebuild(progress)
        except StoreError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"rebuilt {written} indicator rows in {settings.storage.path}")


@click.command()
@config_option
@click.option("--since", required=True, help="Re-tag the articles published from this date or time (ISO-8601, UTC).")
@click.option("--batch", "batch_size", type=click.IntRange(1, 10_000), default=256, show_default=True,
              help="Articles classified and written per step.")  # fmt: skip
def reclassify(config: str | None, since: str, batch_size: int) -> None:
    """Tag the stored articles published from --since again with the configured model, as its version (the
    service must be stopped). Tags of another version are kept in ``tag_history`` and the indicator values they
    changed in ``indicator_history``, so the former version's series stay queryable (docs/sql.md); indicators,
    stories and entities follow the new tags."""
    from stackwatch.pipeline.cli.classifier import configured_classifier
    from stackwatch.signals.messages import MessageError, parse_time
    from stackwatch.storage.indicator_history import keep_indicators, record_changes
    from stackwatch.storage.retagging import article_pages, articles_since
    from stackwatch.storage.store import Batch

    try:
        start = parse_time(since, "--since")
    except MessageError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    settings = cli_settings(config, secrets=False)
    classifier = configured_classifier(settings)
    written = 0
    with _open_for_writing(settings) as store, step_progress("reclassify") as progress:
        total = articles_since(store.connection, start)
        steps = -(-total // batch_size)
        try:
            kept_at = keep_indicators(store.connection, start)
            for step, page in enumerate(article_pages(store.connection, start, size=batch_size), start=1):
                results = classifier.classify([article.text for article in page])
                tagged = [
                    result.tagged(article, classifier.version) for article, result in zip(page, results, strict=True)
                ]
                store.write(Batch(tagged=tagged))
                written += len(tagged)
                progress(step, max(steps, step))
            changed = record_changes(store.connection, start, kept_at)
        except StoreError as error:
            raise click.ClickException(f"{error} ({written} of {total} articles re-tagged before it)") from None
    click.echo(
        f"re-tagged {written} article(s) published since {start.isoformat()} with {classifier.version};"
        f" {changed} indicator value(s) changed or added, the former ones kept in indicator_history"
    )


@click.command()
@config_option
def retention(config: str | None) -> None:
    """Apply retention now: drop old bodies (a month a step) and dead letters, checkpoint, print file size and row
    counts."""
    from stackwatch.storage.maintenance import apply_retention

    settings = cli_settings(config, secrets=False)
    keep = settings.storage.retention
    with _open_for_writing(settings) as store, step_progress("retention") as progress:
        try:
            report = apply_retention(
                store, body_days=keep.body_days, dead_letter_days=keep.dead_letter_days, progress=progress
            )
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
