"""What every ``stackwatch`` command shares: the ``-c/--config`` option and loading the settings it names.

    @click.command()
    @config_option
    def mycommand(config: str | None) -> None:
        settings = cli_settings(config)      # a ClickException naming the bad key, never a traceback

Only commands that send webhooks need their secrets; the others load with ``secrets=False``, so a query runs
without the webhook secret variables set (a variable that is set is still checked).

Settings are imported when loaded, not here, so commands that must start fast stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import click

if TYPE_CHECKING:
    from stackwatch.settings import Settings

__all__ = ["JSONValue", "cli_settings", "config_option"]

JSONValue: TypeAlias = Any
"""A value decoded from the running service's JSON answer (what ``json.loads`` gives): its shape is the sender's,
so commands read it with ``.get`` and checks. What a command builds to print is a ``dict[str, object]``."""

config_option = click.option(
    "-c",
    "--config",
    envvar="STACKWATCH_CONFIG",
    type=click.Path(dir_okay=False),
    default=None,
    help="Configuration file (default: $STACKWATCH_CONFIG, else ./stackwatch.yaml).",
)


def cli_settings(config: str | None, *, secrets: bool = True) -> Settings:
    """The validated settings of ``config`` (or the default file); ClickException with the reasons otherwise.

    ``secrets=False``: webhook secret variables that are not set are no error (for commands that send nothing).
    """
    from stackwatch.errors import ConfigError
    from stackwatch.settings import load_settings

    try:
        return load_settings(config, secrets=secrets)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
