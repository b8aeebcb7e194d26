"""``stackwatch train --dynamic NAME --examples FILE``: one dynamic's own head from a handful of examples.

    stackwatch train --dynamic sovereignty --examples docs/examples/sovereignty.jsonl --out heads/sovereignty.json

The dynamic must be in the configured taxonomy (its keywords are a feature of the head). The texts are encoded by
the encoder the transformer backend runs with this configuration, the classifier head's adapter merged, so the
head fits what it will score. The bundled head and ``classifier.head`` are never written.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from stackwatch.errors import StackwatchError
from stackwatch.settings import Settings

__all__ = ["train_dynamic"]


def _bundled_head() -> Path:
    return Path(str(resources.files("stackwatch").joinpath("models", "head.json"))).resolve()


def train_dynamic(settings: Settings, name: str, examples: str, out: str | None, version: str | None) -> None:
    """Train ``name``'s head on the examples file, write it and say how to use it."""
    from stackwatch.pipeline.roles.classifiers import build_classifier
    from stackwatch.signals.dynamic_training import read_examples, train_dynamic_head
    from stackwatch.signals.taxonomy import Taxonomy
    from stackwatch.signals.transformer import TransformerClassifier

    taxonomy = settings.taxonomy()
    if name not in taxonomy.names:
        raise click.ClickException(
            f"--dynamic {name}: not in the taxonomy ({', '.join(taxonomy.names)}); add it under dynamics: first "
            "(name, description, and keywords if any: they are a feature of the head)"
        )
    target = Path(out) if out else Path("data/heads") / f"dynamic-{name}.json"
    protected = {_bundled_head()} | ({settings.classifier.head.resolve()} if settings.classifier.head else set())
    if target.resolve() in protected:
        raise click.ClickException(f"--out {target}: that is the classifier head; write the dynamic's head elsewhere")
    try:
        items = read_examples(examples)
        # The classifier head's own dynamics only: the head being trained may not exist yet.
        transformer = settings.classifier.model_copy(update={"backend": "transformer"})
        classifier = build_classifier(transformer, Taxonomy.builtin())
        assert isinstance(classifier, TransformerClassifier)
        encoder = classifier.encoder
        embeddings = encoder.encode([item.text for item in items])
        head = train_dynamic_head(
            name,
            items,
            embeddings,
            taxonomy[name].keywords,
            encoder=encoder.name,
            adapter=encoder.adapter,
            version=version,
        )
    except StackwatchError as error:
        raise click.ClickException(str(error)) from None
    head.save(target)
    metrics = head.metrics
    click.echo(f"wrote {target} (version {head.version})")
    click.echo(
        f"{name}: {metrics['positives']} positive, {metrics['negatives']} negative example(s), "
        f"{metrics['keyword_matches']} matching a keyword (weight {head.keyword_weight:.2f}); threshold "
        f"{head.threshold:.2f}; {metrics['out_of_fold']}: precision {metrics['out_of_fold_precision']:.2f}, "
        f"recall {metrics['out_of_fold_recall']:.2f}, F1 {metrics['out_of_fold_f1']:.2f}"
    )
    click.echo(f"use it with head: {target} on the dynamic {name} under dynamics:")
