"""``stackwatch classify``, ``train`` and ``eval``: the classifier from the command line.

    stackwatch classify articles.jsonl            # JSONL {"id", "title", "text"} in → {"id", "labels", "scores"}
    cat articles.jsonl | stackwatch classify -    # the same from stdin
    stackwatch classify --text "Meta signs a TPU deal with Google"
    stackwatch classify --explain articles.jsonl  # each label with the sentence that drove it and its share
    stackwatch train corpus/train.jsonl --validation corpus/validation.jsonl --out heads/head.json
    stackwatch eval corpus/test.jsonl             # per-dynamic P/R/F1 and macro-F1, keyword baseline beside it
    stackwatch train corpus/train.jsonl --with-feedback   # analysts' corrections (``stackwatch label``) join in
    stackwatch eval --feedback                    # the model on the corrections held out of training
    stackwatch train --dynamic sovereignty --examples sovereignty.jsonl   # one dynamic's head from a few examples

A bad input line gives an ``{"line", "error"}`` record and the rest goes on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from stackwatch.errors import ConfigError, StackwatchError
from stackwatch.settings import Settings, load_settings

if TYPE_CHECKING:
    import numpy as np

    from stackwatch.signals.classifier import Classification, Classifier
    from stackwatch.signals.corpus import LabelledText
    from stackwatch.signals.encoder import Precision

__all__ = ["classify", "evaluate", "train"]

PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")  # the two views a head is trained on
READ_BATCH = 64
"""Records classified together by ``stackwatch classify`` (the encoder sub-batches by length)."""

_config_option = click.option(
    "-c", "--config", envvar="STACKWATCH_CONFIG", type=click.Path(dir_okay=False), default=None,
    help="Configuration file (default: $STACKWATCH_CONFIG, else ./stackwatch.yaml if present, else defaults).",
)  # fmt: skip
_backend_option = click.option(
    "--backend",
    type=click.Choice(["keyword", "transformer", "zero-shot"]),
    default=None,
    help="Override classifier.backend.",
)


def _settings(config: str | None, backend: str | None = None) -> Settings:
    try:
        settings = load_settings(config, secrets=False) if config or Path("stackwatch.yaml").exists() else Settings()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    if backend is not None:
        classifier = settings.classifier.model_copy(update={"backend": backend})
        settings = settings.model_copy(update={"classifier": classifier})
    return settings


def configured_classifier(settings: Settings) -> Classifier:
    from stackwatch.pipeline.roles.classifiers import build_classifier

    try:
        return build_classifier(settings.classifier, settings.taxonomy())
    except StackwatchError as error:
        raise click.ClickException(str(error)) from None


Record = dict[str, object]
"""An output line of ``stackwatch classify``: a JSON object."""


def _content(number: int, line: str) -> tuple[Record, str | None]:
    """The output record's start (``id`` or ``line``) and the text to classify, or an error record."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return {"line": number, "error": f"line {number}: not JSON: {error}"}, None
    if not isinstance(record, dict):
        return {"line": number, "error": f"line {number}: expected a JSON object"}, None
    head: Record = {"id": record.get("id")} if "id" in record else {"line": number}
    for key in ("title", "text"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return {**head, "error": f"line {number}: {key}: expected text, got {type(record[key]).__name__}"}, None
    from stackwatch.signals.corpus import combine

    content = combine(record.get("title"), record.get("text"))
    if not content:
        return {**head, "error": f"line {number}: no text to classify (title and text are empty)"}, None
    return head, content


def _batches(stream: IO[str]) -> Iterator[list[tuple[Record, str | None]]]:
    batch: list[tuple[Record, str | None]] = []
    for number, line in enumerate(stream, start=1):
        if line.strip():
            batch.append(_content(number, line))
        if len(batch) >= READ_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _result(head: Record, result: Classification, explain: bool) -> str:
    record: Record = {**head, "labels": list(result.labels), "scores": result.scores}
    if explain:
        record["explanations"] = [
            {"dynamic": item.dynamic, "sentence": item.sentence, "score": item.score} for item in result.explanations
        ]
    return json.dumps(record, ensure_ascii=False)


@click.command()
@_config_option
@_backend_option
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--text", "text", default=None, help="Classify this one text instead of reading JSONL.")
@click.option(
    "--explain",
    is_flag=True,
    help="Add each label's explanation: the sentence that drove it and its share of the logit (log-odds).",
)
def classify(config: str | None, backend: str | None, file: IO[str], text: str | None, explain: bool) -> None:
    """Tag JSONL records ({"id", "title", "text"}) with dynamics; one JSONL result per input line."""
    settings = _settings(config, backend)
    classifier = configured_classifier(settings)
    if explain and settings.classifier.backend != "transformer":
        click.echo(f"--explain: the {settings.classifier.backend} backend gives no explanations", err=True)
    if text is not None:
        if not text.strip():
            raise click.ClickException("--text: no text to classify")
        click.echo(_result({}, classifier.classify([text])[0], explain))
        return
    for batch in _batches(file):
        texts = [content for _, content in batch if content is not None]
        results = iter(classifier.classify(texts) if texts else [])
        for head, content in batch:
            if content is None:
                click.echo(json.dumps(head, ensure_ascii=False))
            else:
                click.echo(_result(head, next(results), explain))


def _read(path: str) -> list[LabelledText]:
    from stackwatch.signals.corpus import read_labelled

    try:
        return read_labelled(path)
    except StackwatchError as error:
        raise click.ClickException(str(error)) from None


def _held_out(record_id: str) -> bool:
    return int(hashlib.sha256(record_id.encode()).hexdigest()[:8], 16) % 100 < 15


def _corrections(settings: Settings, *, held_out: bool) -> list[LabelledText]:
    """The analysts' corrected articles in the store (or its snapshot while the service runs): those kept for
    evaluation (``held_out``) or those to train on."""
    from stackwatch.storage import corrections
    from stackwatch.storage.reading import open_for_reading

    if not settings.storage.path.exists():
        raise click.ClickException(f"no store at {settings.storage.path}: no corrections to read")
    try:
        with open_for_reading(settings.storage.path, settings.storage.snapshot_file()) as source:
            found = corrections.corrected_texts(source.store.connection)
            click.echo(f"corrections: read from {source.describe()}", err=True)
    except StackwatchError as error:
        raise click.ClickException(str(error)) from None
    return [item for item in found if corrections.held_out(item.id) == held_out]


@click.command()
@_config_option
@click.argument("data", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option(
    "--validation",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Labelled JSONL for choosing thresholds (default: validation.jsonl beside DATA, else 15% of DATA).",
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Where to write the head.")
@click.option("--version", "version", default=None, help="Version string (default: encoder+head-TIME-HASH).")
@click.option(
    "--epochs",
    type=click.IntRange(min=0),
    default=None,
    help="Encoder fine-tuning (LoRA) epochs; the best on validation is kept (default 10; 0: frozen encoder).",
)
@click.option(
    "--with-feedback",
    is_flag=True,
    help="Add the analysts' corrections in the store (stackwatch label) to DATA, but those held out for eval.",
)
@click.option("--dynamic", default=None, help="Train this one dynamic's own head from --examples instead of DATA.")
@click.option(
    "--examples",
    type=click.Path(dir_okay=False),
    default=None,
    help='With --dynamic: JSONL of {"text", "label": true/false}, at least 5 of each label.',
)
def train(
    config: str | None,
    data: str | None,
    validation: str | None,
    out: str | None,
    version: str | None,
    epochs: int | None,
    with_feedback: bool,
    dynamic: str | None,
    examples: str | None,
) -> None:
    """Train a new head on labelled JSONL ({"title", "text", "labels"}) and write it with a version.

    Every dynamic of the configured taxonomy that has training examples gets weights, including ones added in
    ``dynamics:``. Point ``classifier.head`` at the file to use it. First a low-rank adapter of the encoder is
    fine-tuned with the head (kept only if it beats the frozen encoder on validation, and stored in the head
    file); then the head is fitted on fp32 and int8 embeddings of every text through the adapted encoder (two
    views), so either precision can use it with the same thresholds.

    ``--dynamic NAME --examples FILE`` instead fits one dynamic's own head (``dynamics[].head``) on a handful of
    labelled texts (:mod:`stackwatch.pipeline.cli.train_dynamic`).
    """
    if dynamic is not None or examples is not None:
        if dynamic is None or examples is None:
            raise click.UsageError("--dynamic and --examples go together")
        if data is not None or validation is not None or epochs is not None or with_feedback:
            raise click.UsageError(
                "--dynamic trains on --examples alone: no DATA, --validation, --epochs or --with-feedback"
            )
        from stackwatch.pipeline.cli.train_dynamic import train_dynamic

        train_dynamic(_settings(config), dynamic, examples, out, version)
        return
    if data is None:
        raise click.UsageError("give labelled DATA (or --dynamic NAME --examples FILE)")
    import numpy as np
    from tqdm import tqdm

    from stackwatch.signals.encoder import Adapter, Encoder
    from stackwatch.signals.training import (
        EPOCHS,
        FINE_TUNE_EPOCHS,
        WEIGHT_DECAYS,
        fine_tune,
        train_head,
        train_head_on_both_precisions,
    )

    settings = _settings(config)
    taxonomy = settings.taxonomy()
    items = _read(data)
    if with_feedback:
        feedback = _corrections(settings, held_out=False)
        click.echo(f"training on {len(feedback)} corrected article(s) besides {data}", err=True)
        items += feedback
    sibling = Path(data).with_name("validation.jsonl")
    if validation is not None or (sibling.exists() and sibling != Path(data)):
        training, checking = items, _read(validation or str(sibling))
    else:
        training = [item for item in items if not _held_out(item.id)]
        checking = [item for item in items if _held_out(item.id)]
    unknown = sorted({label for item in [*training, *checking] for label in item.labels} - set(taxonomy.names))
    if unknown:
        raise click.ClickException(
            f"{data}: labels {', '.join(unknown)} are not in the taxonomy (add them under dynamics:)"
        )
    names = [name for name in taxonomy.names if any(name in item.labels for item in training)]
    config_ = settings.classifier
    epochs = FINE_TUNE_EPOCHS if epochs is None else epochs
    texts = [item.content for item in [*training, *checking]]
    cut = len(training)
    head_steps = len(WEIGHT_DECAYS) * EPOCHS
    tuning_steps = len(texts) + head_steps + epochs * len(training) + (epochs + 1) * len(checking) if epochs else 0
    with tqdm(total=tuning_steps + 2 * len(texts) + head_steps, unit="step", desc="train") as bar:

        def encode(encoder: Encoder) -> np.ndarray:
            rows = []
            for start in range(0, len(texts), READ_BATCH):
                rows.append(encoder.encode(texts[start : start + READ_BATCH]))
                bar.update(min(READ_BATCH, len(texts) - start))
            return np.concatenate(rows)

        try:
            base = Encoder.load(config_.model, precision="fp32", max_length=config_.max_length)
            adapter: Adapter | None = None
            summary = None
            if epochs:
                frozen = encode(base)
                start = train_head(
                    frozen[:cut],
                    [item.labels for item in training],
                    frozen[cut:],
                    [item.labels for item in checking],
                    names,
                    encoder=base.name,
                    tick=lambda: bar.update(1),
                )
                tuning = fine_tune(
                    base,
                    texts[:cut],
                    [item.labels for item in training],
                    texts[cut:],
                    [item.labels for item in checking],
                    start,
                    epochs=epochs,
                    tick=bar.update,
                )
                adapter, summary = tuning.adapter, tuning.summary()
            views = [
                base
                if adapter is None and precision == "fp32"
                else Encoder.load(config_.model, precision=precision, max_length=config_.max_length, adapter=adapter)
                for precision in PRECISIONS
            ]
            fp32, int8 = (encode(encoder) for encoder in views)
            head = train_head_on_both_precisions(
                fp32,
                int8,
                cut,
                [item.labels for item in training],
                [item.labels for item in checking],
                names,
                encoder=base.name,
                tick=lambda: bar.update(1),
                version=version,
                adapter=adapter,
                fine_tuning=summary,
            )
        except StackwatchError as error:
            raise click.ClickException(str(error)) from None
    target = Path(out) if out else Path("data/heads") / f"{head.version.replace('/', '_')}.json"
    head.save(target)
    cuts = ", ".join(f"{d.name} {d.threshold:.2f}" for d in head.dynamics)
    click.echo(f"wrote {target} (version {head.version})")
    click.echo(f"thresholds: {cuts}; validation macro-F1 {head.metrics['validation_macro_f1']:.3f}")
    if summary is not None:
        per_epoch = ", ".join(f"{score:.3f}" for score in summary["validation_macro_f1_per_epoch"])
        kept = f"adapter of epoch {summary['chosen_epoch']}" if adapter is not None else "no adapter (frozen encoder)"
        click.echo(f"fine-tuning: validation macro-F1 per epoch {per_epoch} (0: frozen); kept {kept}")
    if out is None:
        click.echo(f"use it with classifier.head: {target}")


@click.command(name="eval")
@_config_option
@_backend_option
@click.argument("data", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option(
    "--feedback",
    is_flag=True,
    help="Judge on the analysts' corrections that training leaves out (one corrected article in five).",
)
def evaluate(config: str | None, backend: str | None, data: str | None, feedback: bool) -> None:
    """Per-dynamic precision, recall and F1, and macro-F1, on labelled JSONL or on held-out corrections; the
    keyword baseline beside it."""
    from stackwatch.signals.classifier import KeywordClassifier
    from stackwatch.signals.evaluation import evaluate as score

    if (data is None) == (not feedback):
        raise click.UsageError("give labelled DATA or --feedback (one of the two)")
    settings = _settings(config, backend)
    if data is None:
        items = _corrections(settings, held_out=True)
        if not items:
            raise click.ClickException("no held-out corrections yet: stackwatch label adds corrections")
        data = "held-out corrections"
    else:
        items = _read(data)
    classifier = configured_classifier(settings)
    texts = [item.content for item in items]
    gold = [item.labels for item in items]
    names = settings.taxonomy().names
    from tqdm import tqdm

    predicted: list[tuple[str, ...]] = []
    with tqdm(total=len(texts), unit="text", desc="eval", disable=None) as bar:
        for start in range(0, len(texts), READ_BATCH):
            chunk = texts[start : start + READ_BATCH]
            predicted.extend(result.labels for result in classifier.classify(chunk))
            bar.update(len(chunk))
    report = score(gold, predicted, names)
    baseline = score(gold, [r.labels for r in KeywordClassifier(settings.taxonomy()).classify(texts)], names)
    click.echo(f"{data}: {len(items)} texts; model {classifier.version}")
    click.echo(f"{'dynamic':<16}{'support':>8}{'precision':>11}{'recall':>8}{'F1':>7}{'keyword F1':>12}")
    for name in names:
        mine, theirs = report.per_dynamic[name], baseline.per_dynamic[name]
        click.echo(
            f"{name:<16}{mine.support:>8}{mine.precision:>11.3f}{mine.recall:>8.3f}{mine.f1:>7.3f}{theirs.f1:>12.3f}"
        )
    click.echo(f"{'macro-F1':<16}{'':>8}{'':>11}{'':>8}{report.macro_f1:>7.3f}{baseline.macro_f1:>12.3f}")
