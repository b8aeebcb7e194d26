"""Builds the classifier the configuration asks for (once per process: loading the encoder takes seconds).

With ``classifier.runtime: onnx`` (the default) the transformer backend's encoder runs on ONNX Runtime from a
directory that :func:`~stackwatch.signals.onnx_encoder.export` writes once with torch into ``classifier.cache``. The
service runs that export, on a cache miss, in a short-lived process of its own, so neither the service nor its model
processes ever import torch: a model process holds about 190 MB at its peak instead of about 690 MB.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from stackwatch.errors import ClassifierError
from stackwatch.pipeline.process.children import die_with_parent
from stackwatch.settings import ClassifierSettings
from stackwatch.signals.classifier import Classifier, KeywordClassifier
from stackwatch.signals.taxonomy import Taxonomy

if TYPE_CHECKING:
    from stackwatch.signals.encoder import Adapter, SentenceEncoder
    from stackwatch.signals.head import Head

__all__ = ["build_classifier", "build_service_classifier", "export_encoder"]


def build_classifier(config: ClassifierSettings, taxonomy: Taxonomy, threads: int | None = None) -> Classifier:
    """The ``classifier:`` section's backend over ``taxonomy`` (``Settings.taxonomy()``). Raises ClassifierError if
    a model cannot load.

    ``threads`` overrides ``classifier.threads`` (the service gives each of its model processes a share). With
    ``runtime: onnx`` an encoder missing from the cache is exported here first (with torch)."""
    if config.backend == "keyword":
        return KeywordClassifier(taxonomy)
    if config.backend == "zero-shot":
        from stackwatch.signals.zeroshot import ZeroShotClassifier

        return ZeroShotClassifier(config.model, taxonomy, threshold=config.zero_shot_threshold)
    from stackwatch.signals.transformer import TransformerClassifier

    head = _head(config)
    encoder: SentenceEncoder
    if config.runtime == "onnx":
        from stackwatch.signals.onnx_encoder import OnnxEncoder

        encoder = OnnxEncoder.load(
            _export(config, head),
            max_length=config.max_length,
            batch_size=config.inference_batch,
            threads=threads or config.threads,
        )
    else:
        from stackwatch.signals.encoder import Encoder

        encoder = Encoder.load(
            config.model,
            precision=config.precision,
            max_length=config.max_length,
            batch_size=config.inference_batch,
            threads=threads or config.threads,
            adapter=_adapter(config, head),
        )
    return TransformerClassifier(encoder, head, taxonomy, similarity_threshold=config.similarity_threshold)


def export_encoder(config: ClassifierSettings) -> Path:
    """The directory of the transformer backend's exported ONNX encoder (``runtime: onnx``), exported now with
    torch unless ``classifier.cache`` already holds it."""
    return _export(config, _head(config))


def _cache(config: ClassifierSettings) -> Path:
    from stackwatch.signals.onnx_encoder import default_cache

    return config.cache if config.cache is not None else default_cache()


def _export(config: ClassifierSettings, head: Head) -> Path:
    from stackwatch.signals.onnx_encoder import export

    return export(config.model, precision=config.precision, adapter=_adapter(config, head), cache=_cache(config))


def _head(config: ClassifierSettings) -> Head:
    from stackwatch.signals.head import Head

    return Head.load(config.head) if config.head is not None else Head.bundled()


def _adapter(config: ClassifierSettings, head: Head) -> Adapter | None:
    """The head's adapter if the head was trained on this encoder. On another encoder the classifier warns and falls
    back to similarity, as for any head trained on a different encoder."""
    from stackwatch.signals.encoder import DEFAULT_MODEL

    return head.adapter if head.encoder == (config.model or DEFAULT_MODEL) else None


def _export_elsewhere(config: ClassifierSettings) -> None:
    """Run :func:`export_encoder` in a process that exits afterwards, so torch (about 220 MB, and the fp32 network)
    never stays in the caller's memory. A hit in the cache costs no process."""
    from stackwatch.signals.onnx_encoder import exported

    if exported(config.model, config.precision, _adapter(config, _head(config)), _cache(config)) is not None:
        return
    with ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,  # a service killed during the export takes the exporter with it
        initargs=(os.getpid(),),
    ) as pool:
        try:
            pool.submit(export_encoder, config).result()
        except BrokenProcessPool as error:
            raise ClassifierError(f"the process exporting the ONNX encoder died: {error}") from error


def build_service_classifier(config: ClassifierSettings, taxonomy: Taxonomy) -> Classifier:
    """The service's classifier: a model runs in ``classifier.processes`` processes of its own
    (:mod:`stackwatch.pipeline.roles.inference`); the keyword backend, pure Python and cheap, runs in the service's."""
    if config.backend == "keyword":
        return build_classifier(config, taxonomy)
    from stackwatch.pipeline.roles.inference import ProcessClassifier

    if config.backend == "transformer" and config.runtime == "onnx":
        _export_elsewhere(config)
    cores = os.cpu_count() or 1
    processes = config.processes or max(1, min(2, cores))
    threads = config.threads or max(1, cores // processes)
    return ProcessClassifier(partial(build_classifier, config, taxonomy, threads), processes)
