"""Builds the classifier the configuration asks for (once per process: loading the encoder takes seconds)."""

from __future__ import annotations

from stackwatch.settings import Settings
from stackwatch.signals.classifier import Classifier, KeywordClassifier

__all__ = ["build_classifier"]


def build_classifier(settings: Settings) -> Classifier:
    """The configured backend over the configured taxonomy. Raises ClassifierError if a model cannot load."""
    config = settings.classifier
    taxonomy = settings.taxonomy()
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
        threads=config.threads,
        adapter=head.adapter if same_encoder else None,
    )
    return TransformerClassifier(encoder, head, taxonomy, similarity_threshold=config.similarity_threshold)
