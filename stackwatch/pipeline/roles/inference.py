"""The model in a process of its own, so inference never waits for the event loop's GIL.

In one process, the eager forward pass takes the GIL for each of its few hundred torch operations while the event
loop, Kafka and DuckDB hold it too: ``benchmarks/pipeline.py`` measured the inference thread idle half the time.
A child process has a GIL of its own; texts go in and classifications come back through a pipe (a few KB per
batch). With several processes each batch is split between them::

    classifier = ProcessClassifier(partial(build_classifier, config, taxonomy), processes=2)  # starts both, loads it
    classifier.classify(["Meta signs a deal for Google TPUs"])
    classifier.close()

What a child imports is what ``build`` needs: with ``classifier.runtime: onnx`` that is ONNX Runtime and the
tokenizer, never torch (:mod:`stackwatch.pipeline.roles.classifiers`), about 190 MB at its peak instead of 690 MB.

The child ignores SIGINT (a Ctrl-C reaches the whole process group; the parent decides when to stop) and gets
SIGKILL when its parent dies, however it dies (a parent-death signal, see
:mod:`stackwatch.pipeline.process.children`), so it never outlives the service. If one dies, a new one starts and
classifies that part of the batch again: a crashed child costs a reload, not a batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from stackwatch.errors import ClassifierError
from stackwatch.pipeline.process.children import die_with_parent
from stackwatch.signals.classifier import Classification, Classifier

__all__ = ["ProcessClassifier"]

log = logging.getLogger("stackwatch.pipeline.roles.inference")

_loaded: Classifier | None = None
"""The child's classifier (a module global: it lives in the child process only)."""


def _child_setup(parent: int) -> None:
    """The child's first step. The thread that forks it (a classify thread, which lives as long as the service's
    classifier) is the one whose exit the kernel watches."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)


def _load(build: Callable[[], Classifier]) -> str:
    global _loaded
    _loaded = build()
    return _loaded.version


def _classify(texts: list[str]) -> list[Classification]:
    if _loaded is None:
        raise ClassifierError("the inference process has no classifier loaded")
    return _loaded.classify(texts)


class _ModelProcess:
    """One child process with the model loaded; restarted (and the model reloaded) if it dies. Thread-safe: the
    classify agent has a batch running and one queued, from two threads."""

    def __init__(self, build: Callable[[], Classifier]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        with self._lock:
            self.version = self._start()

    def _start(self) -> str:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_setup,
            initargs=(os.getpid(),),
        )
        try:
            return pool.submit(_load, self._build).result()
        except BaseException as error:
            self._pool = None
            pool.shutdown(wait=True, cancel_futures=True)
            if isinstance(error, BrokenProcessPool):
                raise ClassifierError(f"the inference process died while loading the model: {error}") from error
            raise

    def classify(self, texts: list[str]) -> Future[list[Classification]]:
        """Queue ``texts`` behind what the process already has; a dead process is replaced first."""
        with self._lock:
            if self._pool is None:
                raise ClassifierError("the inference process is closed")
            try:
                return self._pool.submit(_classify, texts)
            except BrokenProcessPool:  # it died between batches
                log.error("an inference process died; starting a new one")
                self._start()
                assert self._pool is not None
                return self._pool.submit(_classify, texts)

    def result(self, texts: list[str], future: Future[list[Classification]]) -> list[Classification]:
        """The classifications of ``future``, submitted for ``texts``; if the process died meanwhile, ``texts``
        again on its replacement (which the first caller to notice starts)."""
        try:
            return future.result()
        except BrokenProcessPool:
            log.error("an inference process died; classifying its part of the batch again")
        try:
            return self.classify(texts).result()
        except BrokenProcessPool as error:
            raise ClassifierError(f"an inference process died twice on one batch: {error}") from error

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class ProcessClassifier:
    """A :class:`Classifier` whose model runs in ``processes`` child processes, each batch split between them.

    ``build`` must be picklable (a module-level function or a ``functools.partial`` of one); it runs in each
    child. Construction waits for the models to load and raises what loading raised. Several single-threaded
    processes beat one multi-threaded one here: they need no per-operation barrier between cores, so when the
    service takes a core for a moment only that process's half of the batch waits. ``classify`` may be called
    from several threads: each process works through its shares in the order they were submitted.
    """

    def __init__(self, build: Callable[[], Classifier], processes: int = 1) -> None:
        self._models: list[_ModelProcess] = []
        try:
            for _ in range(max(1, processes)):
                self._models.append(_ModelProcess(build))
        except BaseException:
            self.close()
            raise
        self._version = self._models[0].version

    @property
    def version(self) -> str:
        return self._version

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        models = list(self._models)
        if not models:
            raise ClassifierError("the inference processes are closed")
        size = -(-len(texts) // len(models))
        chunks = [list(texts[start : start + size]) for start in range(0, len(texts), size)] if texts else []
        pending = [(model, chunk, model.classify(chunk)) for model, chunk in zip(models, chunks, strict=False)]
        results: list[Classification] = []
        for model, chunk, future in pending:
            results += model.result(chunk, future)
        return results

    def close(self) -> None:
        models, self._models = self._models, []
        for model in models:
            model.close()
