"""The same text gets the same scores and labels whatever batch it travels in: alone, beside much longer and
shorter texts, in sub-batches of any size and in any order, and after a fresh export.

The int8 encoders used to quantize each Linear layer's input on one scale measured over the whole padded batch,
so a neighbour moved an article's scores (by up to 0.16 on a user's feed) and sometimes its labels.

Tolerance. With ``runtime: onnx`` (the default) the activation scales are fixed, so quantization no longer depends
on the batch; what remains is float rounding: padding a text to a longer neighbour changes the length of the
softmax and pooling sums, and so the order in which the same numbers are added (about 1e-7 on an embedding
component, against 4e-2 before). Embeddings are compared to 1e-6, scores to 1e-4 (the unit of their last printed
decimal) and labels exactly. With ``runtime: torch`` at int8 every text has a forward pass of its own, so its
embeddings are compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from stackwatch.pipeline.roles.classifiers import build_classifier, export_encoder
from stackwatch.settings import ClassifierSettings
from stackwatch.signals.classifier import Classification
from stackwatch.signals.corpus import read_labelled
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.signals.transformer import TransformerClassifier

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
EMBEDDING_TOLERANCE = 1e-6
SCORE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [item.content for item in read_labelled(CORPUS / "test.jsonl")][:24]


@pytest.fixture(scope="module")
def neighbours(texts: list[str]) -> list[str]:
    """Texts to share batches with: one far past the 128-token truncation, one word, and short headlines."""
    return [
        " ".join(texts[:8]),
        "Nvidia",
        "Chips.",
        "Google prices TPUs below Nvidia's H100 for cloud customers",
        "A bakery opens in Lyon",
    ]


def _classifier(cache: Path, runtime: str, inference_batch: int) -> TransformerClassifier:
    config = ClassifierSettings(runtime=runtime, cache=cache, threads=1, inference_batch=inference_batch)
    classifier = build_classifier(config, Taxonomy.builtin())
    assert isinstance(classifier, TransformerClassifier)
    assert classifier.encoder.precision == "int8"
    return classifier


def _batches(texts: list[str], neighbours: list[str]) -> list[list[str]]:
    """Mixed batches holding every text: in order, reversed, interleaved with the neighbours, and one big one."""
    interleaved = [text for pair in zip(texts, neighbours * len(texts), strict=False) for text in pair]
    return [
        texts,
        list(reversed(texts)),
        interleaved[: len(interleaved) // 2],
        interleaved[len(interleaved) // 2 :],
        [neighbours[0], *texts[::2], *neighbours[1:], *texts[1::2]],
        neighbours * 3 + texts + neighbours,
    ]


def _mixed_results(
    classify: Callable[[list[str]], list[Classification]], texts: list[str], neighbours: list[str]
) -> list[dict[str, Classification]]:
    """For each mixed batch, what it gave each of ``texts``."""
    wanted = set(texts)
    found = []
    for batch in _batches(texts, neighbours):
        results = dict(zip(batch, classify(batch), strict=True))
        found.append({text: result for text, result in results.items() if text in wanted})
    return found


def _assert_same(alone: Classification, mixed: Classification, tolerance: float) -> None:
    assert mixed.labels == alone.labels
    assert mixed.scores.keys() == alone.scores.keys()
    for name, score in alone.scores.items():
        assert abs(mixed.scores[name] - score) <= tolerance, (name, score, mixed.scores[name])


@pytest.mark.parametrize("inference_batch", [1, 3, 16, 64])
def test_the_default_runtime_gives_a_text_the_same_scores_alone_and_in_any_batch(
    cache: Path, texts: list[str], neighbours: list[str], inference_batch: int
) -> None:
    alone_classifier = _classifier(cache, "onnx", 16)
    alone = {text: alone_classifier.classify([text])[0] for text in texts}
    classifier = _classifier(cache, "onnx", inference_batch)
    for results in _mixed_results(classifier.classify, texts, neighbours):
        for text, result in results.items():
            _assert_same(alone[text], result, SCORE_TOLERANCE)


def test_the_default_runtimes_embeddings_do_not_move_with_their_neighbours(
    cache: Path, texts: list[str], neighbours: list[str]
) -> None:
    encoder = _classifier(cache, "onnx", 16).encoder
    alone = np.concatenate([encoder.encode([text]) for text in texts])
    mixed = encoder.encode([*neighbours, *texts, *neighbours])[len(neighbours) : len(neighbours) + len(texts)]
    assert np.abs(mixed - alone).max() <= EMBEDDING_TOLERANCE
    padded = np.concatenate([encoder.encode([text, neighbours[0]])[:1] for text in texts])  # each beside 128 tokens
    assert np.abs(padded - alone).max() <= EMBEDDING_TOLERANCE


def test_the_int8_export_quantizes_activations_on_fixed_ranges_and_is_the_same_on_every_export(
    cache: Path, tmp_path: Path
) -> None:
    first = export_encoder(ClassifierSettings(cache=cache))
    graph = onnx.load(str(first / "model.onnx")).graph
    kinds = {node.op_type for node in graph.node}
    assert "MatMulIntegerToFloat" in kinds
    assert not kinds & {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulInteger"}
    second = export_encoder(ClassifierSettings(cache=tmp_path / "encoders"))
    assert second.name == first.name
    assert (second / "model.onnx").read_bytes() == (first / "model.onnx").read_bytes()


def test_the_torch_runtime_at_int8_gives_a_text_exactly_the_same_embedding_in_any_batch(
    cache: Path, texts: list[str], neighbours: list[str]
) -> None:
    classifier = _classifier(cache, "torch", 16)
    alone = np.concatenate([classifier.encoder.encode([text]) for text in texts])
    for batch in _batches(texts, neighbours):
        rows = classifier.encoder.encode(batch)
        for text, row in zip(batch, rows, strict=True):
            if text in texts:
                assert np.array_equal(row, alone[texts.index(text)])
    labels = {text: classifier.classify([text])[0] for text in texts}
    for results in _mixed_results(classifier.classify, texts, neighbours):
        for text, result in results.items():
            _assert_same(labels[text], result, SCORE_TOLERANCE)  # the head's matrix product rounds by batch shape
