"""``stackwatch label``: an analyst's correction of an article's labels, kept for the next ``train``.

    stackwatch label art_5f2c --add capex --remove edge
    stackwatch train corpus/train.jsonl --with-feedback      # the corrections join the training data
    stackwatch eval --feedback                               # the model on the corrections held out of training

Goes through the running service (``POST /api/articles/{id}/labels``), else writes the store file.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

import click

from stackwatch.pipeline.cli.common import cli_settings, config_option
from stackwatch.pipeline.cli.service import OFFLINE, ask_service, current_user, open_store
from stackwatch.signals.messages import utcnow
from stackwatch.storage import corrections

__all__ = ["label"]


@click.command()
@config_option
@click.argument("article_id")
@click.option("--add", "add", multiple=True, metavar="DYNAMIC", help="The article speaks to DYNAMIC (repeatable).")
@click.option("--remove", "remove", multiple=True, metavar="DYNAMIC", help="It does not (repeatable).")
def label(config: str | None, article_id: str, add: Sequence[str], remove: Sequence[str]) -> None:
    """Correct ARTICLE_ID's labels: prints the labels it has once corrected.

    The correction is stored with the article's text, folded into training by ``train --with-feedback`` and, for
    one corrected article in five, kept out of training to judge models by (``eval --feedback``)."""
    if not add and not remove:
        raise click.UsageError("name at least one --add or --remove DYNAMIC")
    settings = cli_settings(config, secrets=False)
    known = set(settings.taxonomy().names)
    unknown = sorted((set(add) | set(remove)) - known)
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a configured dynamic ({', '.join(sorted(known))})")
    path = f"/api/articles/{urllib.parse.quote(article_id, safe='')}/labels"
    answer = ask_service(settings, "POST", path, json={"add": list(add), "remove": list(remove), "by": current_user()})
    if answer is not OFFLINE:
        labels, was = answer["labels"], answer["model_labels"]
    else:
        with open_store(settings, write=True) as store:
            try:
                corrected = corrections.correct_labels(
                    store.connection, article_id, add=add, remove=remove, by=current_user(), now=utcnow()
                )
            except ValueError as error:
                raise click.BadParameter(str(error)) from None
        if corrected is None:
            raise click.ClickException(f"no article with id {article_id!r}")
        labels, was = list(corrected.labels), list(corrected.model_labels)
    click.echo(f"{article_id}: {', '.join(labels) or '(none)'} (the model said {', '.join(was) or '(none)'})")
