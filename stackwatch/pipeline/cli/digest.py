"""The ``digest`` command: what happened in a period, per dynamic, against the period before.

    stackwatch digest --since 1d                          # every dynamic, the last 24 hours, as terminal text
    stackwatch digest --since 7d --dynamic decoupling     # one dynamic, the last week
    stackwatch digest --since 1d --until 2026-03-10 --format slack    # the day before 2026-03-10, as mrkdwn

It reads the store file, or its snapshot while a running service holds the file (and says which on stderr,
as ``export`` does), and never writes either. ``--format json`` prints the digest's data as the Standard
Webhooks body carries it.
"""

from __future__ import annotations

import json

import click

from stackwatch.pipeline.cli.common import cli_settings, config_option
from stackwatch.pipeline.cli.storage import read_store
from stackwatch.pipeline.roles.digests import FORMATS, PeriodError, period_of, render_digest
from stackwatch.signals.taxonomy import match_dynamic
from stackwatch.storage.digest import read_digest

__all__ = ["digest"]


@click.command()
@config_option
@click.option("--since", default="1d", show_default=True, help="The period's length: 1d, 7d, 12h, ...")
@click.option("--until", default=None, help="When the period ends (ISO 8601, UTC by default; default: now).")
@click.option("--dynamic", "dynamics", multiple=True, help="A dynamic to digest (repeatable; default: all).")
@click.option("--format", "output_format", type=click.Choice([*FORMATS, "json"]), default="text", show_default=True)
def digest(config: str | None, since: str, until: str | None, dynamics: tuple[str, ...], output_format: str) -> None:
    """Print a digest of the store: counts against the previous period, top stories, new entities, alerts."""
    settings = cli_settings(config, secrets=False)
    try:
        period = period_of(since, until)
    except PeriodError as error:
        raise click.BadParameter(error.message, param_hint=f"--{error.key}") from None
    known = settings.taxonomy().names
    chosen: list[str] = []
    for name in dynamics:
        dynamic = match_dynamic(name, known)
        if dynamic is None:
            raise click.BadParameter(f"unknown dynamic {name!r} (known: {', '.join(known)})", param_hint="--dynamic")
        chosen.append(dynamic)
    picked = tuple(dict.fromkeys(chosen)) or known
    title = ", ".join(picked) if chosen else "all dynamics"
    with read_store(settings, "digest") as store:
        result = read_digest(store.connection, title, period, picked, every_alert=not chosen)
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    else:
        click.echo(render_digest(result, output_format), nl=False)
