"""Builds the classifier the configuration asks for (once per process: loading the encoder takes seconds)."""

from __future__ import annotations

import os
from functools import partial

from stackwatch.settings import ClassifierSettings
from stackwatch.signals.classifier import Classifier, KeywordClassifier
from stackwatch.signals.taxonomy import Taxonomy

__all__ = ["build_classifier", "build_service_classifier"]


def build_classifier(config: ClassifierSettings, taxonomy: Taxonomy, threads: int | None = None) -> Classifier:
    """The ``classifier:`` section's backend over ``taxonomy`` (``Settings.taxonomy()``). Raises ClassifierError if
    a model cannot load.

    ``threads`` overrides ``classifier.threads`` (the service gives each of its model processes a share)."""
    if config.backend == "keyword":
        return KeywordClassifier(taxonomy)
    if config.backend == "zero-shot":
        from stackwatch.signals.zeroshot import ZeroShotClassifier

        return ZeroShotClassifier(config.model, taxonomy, threshold=config.zero_shot_threshold)
    from stackwatch.signals.encoder import DEFAULT_MODEL, Encoder
    from stackwatch.signals.head import Head
    from stackwatch.signals.transformer import TransformerClassifier

    head = Head.load(config.head) if config.head is not None else Head.bundled()
    # A head trained with an encoder adapter runs on that encoder with the adapter merged; on another encoder
    # the classifier warns and falls back to similarity, as for any head trained on a different encoder.
    same_encoder = head.encoder == (config.model or DEFAULT_MODEL)
    encoder = Encoder.load(
        config.model,
        precision=config.precision,
        max_length=config.max_length,
        batch_size=config.inference_batch,
        threads=threads or config.threads,
        adapter=head.adapter if same_encoder else None,
    )
    return TransformerClassifier(encoder, head, taxonomy, similarity_threshold=config.similarity_threshold)


def build_service_classifier(config: ClassifierSettings, taxonomy: Taxonomy) -> Classifier:
    """The service's classifier: a model runs in ``classifier.processes`` processes of its own
    (:mod:`stackwatch.pipeline.roles.inference`); the keyword backend, pure Python and cheap, runs in the service's."""
    if config.backend == "keyword":
        return build_classifier(config, taxonomy)
    from stackwatch.pipeline.roles.inference import ProcessClassifier

    cores = os.cpu_count() or 1
    processes = config.processes or max(1, min(2, cores))
    threads = config.threads or max(1, cores // processes)
    return ProcessClassifier(partial(build_classifier, config, taxonomy, threads), processes)
