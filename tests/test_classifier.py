"""The transformer classifier with the real bundled model, offline: labels, fallbacks, train → load, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stackwatch.errors import ClassifierError
from stackwatch.pipeline.classifiers import build_classifier
from stackwatch.pipeline.cli import cli
from stackwatch.settings import Settings, settings_from_mapping
from stackwatch.signals.corpus import read_labelled
from stackwatch.signals.head import Head, train_head
from stackwatch.signals.taxonomy import Dynamic, Taxonomy
from stackwatch.signals.transformer import TransformerClassifier

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


@pytest.fixture(scope="module")
def classifier() -> TransformerClassifier:
    built = build_classifier(Settings())
    assert isinstance(built, TransformerClassifier)
    return built


def test_default_backend_is_the_bundled_transformer_loaded_offline(classifier: TransformerClassifier) -> None:
    assert classifier.version == Head.bundled().version
    assert classifier.version.startswith("all-MiniLM-L6-v2+head-")
    assert classifier.similarity_dynamics == ()


@pytest.mark.parametrize(
    ("text", "dynamic"),
    [
        ("Microsoft keeps exclusive rights to host OpenAI's API on Azure under the renewed partnership", "exclusivity"),
        ("Meta raises its capital expenditure forecast to $70 billion to build AI data centres", "capex"),
        ("Anthropic will train its next models on up to one million Google TPUs instead of Nvidia GPUs", "decoupling"),
        ("Apple's new on-device language model runs Siri requests locally on the iPhone without the cloud", "edge"),
    ],
)
def test_clear_cut_texts_get_their_dynamic(classifier: TransformerClassifier, text: str, dynamic: str) -> None:
    [result] = classifier.classify([text])
    assert dynamic in result.labels
    assert set(result.scores) == set(Taxonomy.builtin().names)
    assert all(0.0 <= score <= 1.0 for score in result.scores.values())


def test_multi_label_and_no_label(classifier: TransformerClassifier) -> None:
    both = (
        "Amazon will spend $11 billion on a new data-centre campus in Indiana built around its own Trainium chips, "
        "part of a plan to cut its reliance on Nvidia"
    )
    neither = "The city council approved a new bicycle lane on Main Street after a public consultation"
    hard_negative = "The striker's pace gives the team an edge on the counter-attack, the coach said"
    many, none, edge_sense = classifier.classify([both, neither, hard_negative])
    assert {"capex", "decoupling"} <= set(many.labels)
    assert none.labels == ()
    assert "edge" not in edge_sense.labels


def test_results_do_not_depend_on_batch_order(classifier: TransformerClassifier) -> None:
    texts = ["Google TPU deal", "A long paragraph about Nvidia earnings and the data-centre build-out " * 5, "AI PC"]
    forward = classifier.classify(texts)
    backward = classifier.classify(texts[::-1])[::-1]
    assert [r.labels for r in forward] == [r.labels for r in backward]
    assert classifier.classify([]) == []


def test_user_dynamic_without_head_weights_uses_similarity(classifier: TransformerClassifier) -> None:
    taxonomy = Taxonomy.with_overrides(
        [
            Dynamic(
                "sovereign",
                "Sovereign AI: governments and defence ministries building national AI compute.",
                ("France funds a national AI supercomputer for its defence ministry.",),
            )
        ]
    )
    custom = TransformerClassifier(classifier.encoder, Head.bundled(), taxonomy)
    assert custom.similarity_dynamics == ("sovereign",)
    hit, miss = custom.classify(
        [
            "The UK government will build a national AI supercomputer for defence and security agencies",
            "Apple's on-device model runs locally on the iPhone",
        ]
    )
    assert "sovereign" in hit.labels
    assert "sovereign" not in miss.labels
    assert "edge" in miss.labels


def test_train_then_load_round_trips_thresholds_and_version(classifier: TransformerClassifier, tmp_path: Path) -> None:
    items = read_labelled(CORPUS / "train.jsonl")[::5]  # every dynamic, records are sorted by id
    embeddings = classifier.encoder.encode([item.content for item in items])
    names = Taxonomy.builtin().names
    head = train_head(
        embeddings[:100],
        [i.labels for i in items[:100]],
        embeddings[100:],
        [i.labels for i in items[100:]],
        names,
        encoder=classifier.encoder.name,
        version="test-head-1",
    )
    loaded = Head.load(head.save(tmp_path / "head.json"))
    assert loaded == head
    assert [d.threshold for d in loaded.dynamics] == [d.threshold for d in head.dynamics]
    reloaded = TransformerClassifier(classifier.encoder, loaded, Taxonomy.builtin())
    assert reloaded.version == "test-head-1"
    probabilities = loaded.probabilities(embeddings[:3])
    assert np.allclose(probabilities["capex"], head.probabilities(embeddings[:3])["capex"])


def test_a_broken_head_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "head.json"
    broken.write_text('{"format": 1, "version": "x"}', encoding="utf-8")
    with pytest.raises(ClassifierError, match="not a stackwatch classifier head"):
        Head.load(broken)
    with pytest.raises(ClassifierError, match="cannot read"):
        Head.load(tmp_path / "missing.json")


def test_zero_shot_without_a_model_is_a_clear_error() -> None:
    settings = settings_from_mapping({"classifier": {"backend": "zero-shot"}})
    with pytest.raises(ClassifierError, match=r"classifier\.model: the zero-shot backend needs an NLI model"):
        build_classifier(settings)
    missing = settings_from_mapping({"classifier": {"backend": "zero-shot", "model": "no-such-org/no-such-nli"}})
    with pytest.raises(ClassifierError, match="cannot load NLI model 'no-such-org/no-such-nli'"):
        build_classifier(missing)


@pytest.mark.usefixtures("workdir")
def test_cli_classify_jsonl_with_a_bad_line() -> None:
    lines = [
        json.dumps({"id": "a", "title": "Google signs TPU deal with Meta", "text": "Meta will rent TPUs."}),
        "{not json",
        json.dumps({"id": "b", "title": ""}),
        json.dumps({"id": "c", "text": "Qualcomm shows a 10-billion-parameter model running on a phone NPU"}),
        json.dumps({"id": "d", "title": ["not", "text"]}),
    ]
    result = CliRunner().invoke(cli, ["classify", "-"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]  # stderr has load progress
    assert [r.get("id", r.get("line")) for r in records] == ["a", 2, "b", "c", "d"]
    assert "decoupling" in records[0]["labels"]
    assert "not JSON" in records[1]["error"]
    assert "no text to classify" in records[2]["error"]
    assert "edge" in records[3]["labels"]
    assert "title: expected text" in records[4]["error"]

    one = CliRunner().invoke(cli, ["classify", "--text", "Meta raises capex to $70bn for AI data centres"])
    assert one.exit_code == 0, one.output
    assert "capex" in json.loads(one.stdout)["labels"]
