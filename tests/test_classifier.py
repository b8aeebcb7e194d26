"""The transformer classifier with the real bundled model, offline: labels, fallbacks, train → load, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stackwatch.errors import ClassifierError
from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.roles.classifiers import build_classifier
from stackwatch.settings import ClassifierSettings, settings_from_mapping
from stackwatch.signals.corpus import read_labelled
from stackwatch.signals.encoder import DEFAULT_MODEL, Adapter, Encoder
from stackwatch.signals.head import DynamicWeights, Head
from stackwatch.signals.taxonomy import Dynamic, Taxonomy
from stackwatch.signals.training import LORA_TARGETS, fine_tune, train_head
from stackwatch.signals.transformer import TransformerClassifier

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


@pytest.fixture(scope="module")
def classifier() -> TransformerClassifier:
    built = build_classifier(ClassifierSettings(), Taxonomy.builtin())
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
        adapter=Head.bundled().adapter,  # the embeddings came through the bundled encoder adapter
    )
    loaded = Head.load(head.save(tmp_path / "head.json"))
    assert loaded == head
    assert [d.threshold for d in loaded.dynamics] == [d.threshold for d in head.dynamics]
    reloaded = TransformerClassifier(classifier.encoder, loaded, Taxonomy.builtin())
    assert reloaded.version == "test-head-1"
    probabilities = loaded.probabilities(embeddings[:3])
    assert np.allclose(probabilities["capex"], head.probabilities(embeddings[:3])["capex"])


def _small_adapter(base: str = DEFAULT_MODEL) -> Adapter:
    rng = np.random.default_rng(0)
    layers = {
        f"encoder.layer.{layer}.attention.self.{kind}": (
            (0.05 * rng.standard_normal((2, 384))).astype(np.float32),
            (0.05 * rng.standard_normal((384, 2))).astype(np.float32),
        )
        for layer in (0, 5)
        for kind in ("query", "value")
    }
    return Adapter(base, 2, 2.0, layers)


def test_an_adapter_round_trips_through_the_head_file_and_is_merged_before_quantization(tmp_path: Path) -> None:
    adapter = _small_adapter()
    head = replace(Head.bundled(), version="test-adapter-1", adapter=adapter)
    loaded = Head.load(head.save(tmp_path / "head.json"))
    assert loaded == head
    assert loaded.adapter is not None
    assert loaded.adapter.digest == adapter.digest
    assert loaded.adapter.size == 4 * (2 * 384 + 384 * 2)

    texts = ["Microsoft keeps exclusive rights to host OpenAI's API on Azure", "Meta raises capex for AI data centres"]
    plain = Encoder.load(precision="fp32", max_length=32)
    fp32 = Encoder.load(precision="fp32", max_length=32, adapter=loaded.adapter)
    int8 = Encoder.load(precision="int8", max_length=32, adapter=loaded.adapter)
    assert (plain.adapter, fp32.adapter, int8.adapter) == (None, adapter.digest, adapter.digest)
    name = "encoder.layer.5.attention.self.value"
    down, up = adapter.layers[name]
    merged = fp32.model.get_submodule(name).weight.detach().numpy()
    expected = plain.model.get_submodule(name).weight.detach().numpy() + 2.0 * up @ down
    assert np.allclose(merged, expected, atol=1e-6)
    adapted, quantized = fp32.encode(texts), int8.encode(texts)
    assert not np.allclose(adapted, plain.encode(texts), atol=1e-3)
    assert (adapted * quantized).sum(axis=1).min() > 0.95  # int8 of the merged weights stays close to fp32

    assert TransformerClassifier(fp32, loaded, Taxonomy.builtin()).version == "test-adapter-1"


def test_a_head_and_an_encoder_with_different_adapters_fall_back_to_similarity(
    classifier: TransformerClassifier, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = replace(Head.bundled(), adapter=_small_adapter())
    custom = TransformerClassifier(classifier.encoder, stranger, Taxonomy.builtin())
    assert custom.similarity_dynamics == Taxonomy.builtin().names
    assert "falls back to similarity" in caplog.text
    with pytest.raises(ClassifierError, match="adapter was trained on 'another-model'"):
        Encoder.load(precision="fp32", adapter=_small_adapter("another-model"))


def test_format_1_heads_still_load_and_a_broken_adapter_is_a_clear_error(tmp_path: Path) -> None:
    data = Head.bundled().to_dict()
    data.update(format=1, adapter=None)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data), encoding="utf-8")
    assert Head.load(old).adapter is None
    data.update(format=2, adapter={**_small_adapter().to_dict(), "rank": 3})
    old.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ClassifierError, match=r"not a stackwatch classifier head.*expected 3x384"):
        Head.load(old)


def test_fine_tuning_is_deterministic_and_chosen_on_validation() -> None:
    training = read_labelled(CORPUS / "train.jsonl")[::24]
    checking = read_labelled(CORPUS / "validation.jsonl")[::8]
    encoder = Encoder.load(precision="fp32", max_length=32)
    names = Taxonomy.builtin().names
    blank = Head("blank", encoder.name, 384, tuple(DynamicWeights(name, (0.0,) * 384, 0.0, 0.5) for name in names))
    runs = [
        fine_tune(
            encoder,
            [item.content for item in training],
            [item.labels for item in training],
            [item.content for item in checking],
            [item.labels for item in checking],
            blank,
            epochs=2,
            rank=2,
        )
        for _ in range(2)
    ]
    first, second = runs
    assert len(first.validation_macro_f1) == 3  # the frozen encoder, then each epoch
    assert first.validation_macro_f1 == second.validation_macro_f1
    assert first.adapter is not None
    assert second.adapter is not None
    assert first.adapter.digest == second.adapter.digest
    assert first.epoch == 1 + int(np.argmax(first.validation_macro_f1[1:]))
    assert first.validation_macro_f1[first.epoch] > first.validation_macro_f1[0]
    assert len(LORA_TARGETS) == 6  # every Linear layer of a block: attention query, key, value, output; feed-forward
    assert set(first.adapter.layers) == {f"encoder.layer.{layer}.{kind}" for layer in range(6) for kind in LORA_TARGETS}
    assert encoder.adapter is None
    assert all(type(module).__name__ != "_LowRank" for module in encoder.model.modules())  # trained on a copy


@pytest.mark.usefixtures("workdir")
def test_cli_train_writes_a_head_that_the_service_loads(tmp_path: Path) -> None:
    for split, step in (("train", 24), ("validation", 8)):
        lines = (CORPUS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[::step]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "small.yaml").write_text("classifier:\n  max_length: 32\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["train", "-c", "small.yaml", "train.jsonl", "--out", "head.json", "--epochs", "1", "--version", "v-small"]
    )
    assert result.exit_code == 0, result.output
    assert "fine-tuning: validation macro-F1 per epoch" in result.stdout
    head = Head.load(tmp_path / "head.json")
    assert head.version == "v-small"
    assert head.metrics["fine_tuning"]["epochs"] == 1
    assert (head.adapter is None) == (head.metrics["fine_tuning"]["chosen_epoch"] == 0)
    settings = settings_from_mapping({"classifier": {"head": "head.json", "max_length": 32}})
    built = build_classifier(settings.classifier, settings.taxonomy())
    assert isinstance(built, TransformerClassifier)
    assert built.version == "v-small"  # the head's adapter (if kept) was merged, so the head was not refused
    assert built.similarity_dynamics == ()


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
        build_classifier(settings.classifier, settings.taxonomy())
    missing = settings_from_mapping({"classifier": {"backend": "zero-shot", "model": "no-such-org/no-such-nli"}})
    with pytest.raises(ClassifierError, match="cannot load NLI model 'no-such-org/no-such-nli'"):
        build_classifier(missing.classifier, missing.taxonomy())


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
