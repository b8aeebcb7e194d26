"""The ``stackwatch`` command.

stackwatch up -c stackwatch.yaml          # every role in one process (embedded broker if none configured)
stackwatch ingest|worker|sink -c FILE     # one role, for scale-out on a real Kafka
stackwatch sql "SELECT count(*) FROM articles"
stackwatch classify --text "Meta signs a TPU deal with Google"
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Collection

import click

from stackwatch import __version__
from stackwatch.errors import StackwatchError
from stackwatch.pipeline.cli.common import cli_settings, config_option
from stackwatch.settings import config_path

__all__ = ["main"]

log = logging.getLogger("stackwatch")


@click.group()
@click.version_option(__version__, prog_name="stackwatch")
def cli() -> None:
    """Stackwatch: watch the AI compute market in the news."""


def _run(config: str | None, roles: Collection[str], web_port: int | None) -> None:
    from stackwatch.pipeline.process.run import run_roles

    settings = cli_settings(config)
    try:
        run_roles(settings, roles, web_port=web_port, config_file=config_path(config))
    except StackwatchError as error:
        raise click.ClickException(str(error)) from None


web_port_option = click.option("--web-port", type=int, default=None, help="Override web.port (0 disables clashes).")


@cli.command()
@config_option
@web_port_option
def up(config: str | None, web_port: int | None) -> None:
    """Run every role in one process: connectors, agents, the DuckDB sink, webhooks, the web server."""
    _run(config, ("ingest", "worker", "sink"), web_port)


@cli.command()
@config_option
@web_port_option
def ingest(config: str | None, web_port: int | None) -> None:
    """Run the connectors only (needs kafka.bootstrap_servers)."""
    _run(config, ("ingest",), web_port)


@cli.command()
@config_option
@web_port_option
def worker(config: str | None, web_port: int | None) -> None:
    """Run the Faust agents only; start several to spread partitions (needs kafka.bootstrap_servers)."""
    _run(config, ("worker",), web_port)


@cli.command()
@config_option
@web_port_option
def sink(config: str | None, web_port: int | None) -> None:
    """Run the single DuckDB writer and webhook delivery (needs kafka.bootstrap_servers)."""
    _run(config, ("sink",), web_port)


def _register_commands() -> None:
    from stackwatch.pipeline.cli.receive import receive
    from stackwatch.pipeline.cli.sources import backfill, sources
    from stackwatch.pipeline.cli.storage import export, rebuild, reclassify, retention, sql

    cli.add_command(receive)
    for command in (sql, export, rebuild, reclassify, retention):
        cli.add_command(command)
    cli.add_command(sources)
    cli.add_command(backfill)
    from stackwatch.pipeline.cli.classifier import classify, evaluate, train
    from stackwatch.pipeline.cli.labels import label

    for command in (classify, train, evaluate, label):
        cli.add_command(command)
    from stackwatch.pipeline.cli.digest import digest

    cli.add_command(digest)


_register_commands()


from stackwatch.pipeline.cli.alerts import alerts, rules, silence  # noqa: E402 (registered after cli exists)

for _command in (alerts, silence, rules):
    cli.add_command(_command)

from stackwatch.pipeline.cli.ops import reload, status  # noqa: E402 (registered after cli exists)

cli.add_command(status)
cli.add_command(reload)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
