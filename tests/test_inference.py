"""The service's model processes: the same answers as in-process, in order, and a dead process costs no batch."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from stackwatch.errors import ClassifierError
from stackwatch.pipeline.roles.classifiers import build_classifier
from stackwatch.pipeline.roles.inference import ProcessClassifier
from stackwatch.settings import ClassifierSettings
from stackwatch.signals.classifier import KeywordClassifier
from stackwatch.signals.taxonomy import Taxonomy

TEXTS = [
    "Meta signs a multibillion-dollar deal to rent Google TPUs, cutting its reliance on Nvidia",
    "Microsoft lifts AI capex guidance to $80 billion for data centres",
    "Apple moves more Apple Intelligence features on-device, running on the iPhone's NPU",
    "Azure stays OpenAI's exclusive API cloud under the new terms",
    "Local bakery wins award for sourdough",
]


def no_model() -> KeywordClassifier:
    raise ClassifierError("cannot load model 'missing': no such file")


@pytest.fixture
def keyword_processes() -> Iterator[ProcessClassifier]:
    classifier = ProcessClassifier(partial(KeywordClassifier, Taxonomy.builtin()), processes=2)
    yield classifier
    classifier.close()


def test_two_model_processes_answer_as_the_model_does_in_process_and_in_order() -> None:
    in_process = build_classifier(ClassifierSettings(), Taxonomy.builtin(), threads=1)
    remote = ProcessClassifier(partial(build_classifier, ClassifierSettings(), Taxonomy.builtin(), 1), processes=2)
    try:
        assert remote.version == in_process.version
        # Each process gets its contiguous share (3 + 2). Dynamic int8 scales depend on the whole forward batch,
        # so the in-process answer to compare with is for the same shares.
        expected = in_process.classify(TEXTS[:3]) + in_process.classify(TEXTS[3:])
        got = remote.classify(TEXTS)
        assert [result.labels for result in got] == [result.labels for result in expected]
        for mine, theirs in zip(got, expected, strict=True):
            assert mine.scores == pytest.approx(theirs.scores, abs=1e-4)
    finally:
        remote.close()


def test_a_killed_model_process_is_replaced_and_the_batch_still_classified(
    keyword_processes: ProcessClassifier,
) -> None:
    before = keyword_processes.classify(TEXTS)
    for child in multiprocessing.active_children():
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(10)
    assert keyword_processes.classify(TEXTS) == before
    assert len(multiprocessing.active_children()) == 2


def test_batches_from_two_threads_each_get_their_own_answers_in_order(keyword_processes: ProcessClassifier) -> None:
    local = KeywordClassifier(Taxonomy.builtin())
    batches = [TEXTS[index:] + TEXTS[:index] for index in range(len(TEXTS))] * 4
    with ThreadPoolExecutor(max_workers=2) as threads:
        answers = list(threads.map(keyword_processes.classify, batches))
    assert answers == [local.classify(batch) for batch in batches]


def test_a_batch_smaller_than_the_processes_and_an_empty_one(keyword_processes: ProcessClassifier) -> None:
    assert [result.labels for result in keyword_processes.classify(TEXTS[:1])] == [("decoupling",)]
    assert keyword_processes.classify([]) == []


def test_a_model_that_cannot_load_is_an_error_with_the_reason() -> None:
    with pytest.raises(ClassifierError, match="cannot load model 'missing'"):
        ProcessClassifier(no_model, processes=2)
    assert multiprocessing.active_children() == []


def test_after_close_it_says_so(keyword_processes: ProcessClassifier) -> None:
    keyword_processes.close()
    with pytest.raises(ClassifierError, match="closed"):
        keyword_processes.classify(TEXTS)
