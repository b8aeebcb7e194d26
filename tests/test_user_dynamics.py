"""User dynamics in the transformer backend, with the real bundled model: their own thresholds, their keywords as
a feature, and their own head trained from a handful of examples (``stackwatch train --dynamic``)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.errors import ClassifierError, ConfigError
from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.roles.classifiers import build_classifier
from stackwatch.settings import ClassifierSettings, load_settings, settings_from_mapping
from stackwatch.signals.corpus import CorpusError
from stackwatch.signals.dynamic_training import read_examples
from stackwatch.signals.head import Head
from stackwatch.signals.taxonomy import Dynamic, Taxonomy
from stackwatch.signals.transformer import TransformerClassifier
from stackwatch.signals.user_dynamics import KEYWORD_BOOST, SIMILARITY_SHARPNESS, DynamicHead, KeywordFeature

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples" / "sovereignty.jsonl"
SOVEREIGNTY = Dynamic(
    "sovereignty",
    "Governments funding or mandating domestic AI compute.",
    ("France backs a national AI supercomputer", "India subsidises GPU clusters for local startups"),
)
CONFIG = """\
dynamics:
  - name: sovereignty
    description: Governments funding or mandating domestic AI compute.
    examples: ["France backs a national AI supercomputer", "India subsidises GPU clusters for local startups"]
    keywords: ["sovereign (AI|compute|cloud)", "national (AI|GPU) (cluster|supercomputer)s?"]
"""
HELD_OUT_IN = "Germany's federal government will finance a national GPU supercomputer reserved for German AI companies"
HELD_OUT_OUT = "Amazon plans to spend $100 billion on new data centres this year"


@pytest.fixture(scope="module")
def classifier() -> TransformerClassifier:
    built = build_classifier(ClassifierSettings(), Taxonomy.builtin())
    assert isinstance(built, TransformerClassifier)
    return built


def custom(classifier: TransformerClassifier, *dynamics: Dynamic) -> TransformerClassifier:
    return TransformerClassifier(classifier.encoder, Head.bundled(), Taxonomy.with_overrides(dynamics))


def rejected(dynamic: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as error:
        settings_from_mapping({"dynamics": [{"name": "sovereignty", "description": "d", **dynamic}]})
    return str(error.value)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.2, "high", True])
def test_a_threshold_outside_zero_to_one_names_the_key_and_the_dynamic(value: object) -> None:
    message = rejected({"threshold": value})
    assert "dynamics[0].threshold: dynamic 'sovereignty': expected a number between 0 and 1" in message
    assert repr(value) in message


@pytest.mark.parametrize(
    ("keyword", "reason"),
    [("(", "not a regular expression"), ("(?<=national) AI", "RE2 cannot run it: invalid perl operator")],
)
def test_a_keyword_neither_engine_can_run_names_the_key_and_the_dynamic(keyword: str, reason: str) -> None:
    assert f"dynamics[0].keywords: dynamic 'sovereignty': keyword {keyword!r}: {reason}" in rejected(
        {"keywords": [keyword]}
    )


def test_the_configured_threshold_and_head_reach_the_taxonomy() -> None:
    raw = {"name": "sovereignty", "description": "d", "threshold": 0.3, "head": "heads/s.json"}
    dynamic = settings_from_mapping({"dynamics": [raw]}).taxonomy()["sovereignty"]
    assert (dynamic.threshold, dynamic.head) == (0.3, Path("heads/s.json"))
    default = settings_from_mapping({"dynamics": [{"name": "sovereignty", "description": "d"}]}).taxonomy()
    assert (default["sovereignty"].threshold, default["sovereignty"].head) == (None, None)


def test_two_user_dynamics_with_different_thresholds_label_differently(classifier: TransformerClassifier) -> None:
    loose = replace(SOVEREIGNTY, name="loose", threshold=0.2)
    strict = replace(SOVEREIGNTY, name="strict", threshold=0.9)
    default = replace(SOVEREIGNTY, name="default")
    both = custom(classifier, loose, strict, default)
    assert both.similarity_dynamics == ("loose", "strict", "default")
    [result] = both.classify([HELD_OUT_IN])
    assert "loose" in result.labels
    assert "strict" not in result.labels
    assert result.scores["loose"] > result.scores["default"] > result.scores["strict"]
    global_default = TransformerClassifier(
        classifier.encoder, Head.bundled(), Taxonomy.with_overrides([default]), similarity_threshold=0.2
    )
    assert global_default.classify([HELD_OUT_IN])[0].scores["default"] == result.scores["loose"]


def test_a_threshold_on_a_dynamic_the_head_scores_moves_its_cut(classifier: TransformerClassifier) -> None:
    text = "Meta raises its capital expenditure forecast to $70 billion to build AI data centres"
    assert "capex" in classifier.classify([text])[0].labels
    capex = Taxonomy.builtin()["capex"]
    assert "capex" not in custom(classifier, replace(capex, threshold=0.999999)).classify([text])[0].labels


def test_a_keyword_raises_the_similarity_by_a_fixed_amount_whatever_the_batch(
    classifier: TransformerClassifier,
) -> None:
    plain = replace(SOVEREIGNTY, threshold=0.6)
    keyed = replace(plain, keywords=("sovereign (ai|compute)",))
    text = "Lawmakers debate a SOVEREIGN AI plan to host public models in-country"
    [without] = custom(classifier, plain).classify([text])
    others = ["Nvidia reports record revenue", "A long paragraph about data-centre power contracts " * 6]
    with_keyword = custom(classifier, keyed)
    alone = with_keyword.classify([text])[0].scores["sovereignty"]
    batched = with_keyword.classify([others[0], text, others[1]])[1].scores["sovereignty"]
    assert alone == batched
    assert alone > without.scores["sovereignty"]

    def logit(score: float) -> float:
        return math.log(score / (1 - score)) / SIMILARITY_SHARPNESS

    assert logit(alone) - logit(without.scores["sovereignty"]) == pytest.approx(KEYWORD_BOOST, abs=0.002)
    word_inside = "A sovereignAI start-up raises money"  # not the whole word: no match
    assert with_keyword.classify([word_inside])[0].scores == custom(classifier, plain).classify([word_inside])[0].scores


def test_keywords_match_whole_words_and_phrases_in_any_case() -> None:
    feature = KeywordFeature(["sovereign (ai|compute)", "gpu"])
    texts = ["Sovereign  AI", "sovereign compute.", "SovereignAI", "GPUs", "a GPU, rented", "sovereign ai-first"]
    assert feature.hits(texts).tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.usefixtures("workdir")
def test_a_head_trained_from_a_few_examples_labels_a_held_out_case_and_not_a_clear_negative(tmp_path: Path) -> None:
    bundled = resources.files("stackwatch").joinpath("models", "head.json")
    before = hashlib.sha256(bundled.read_bytes()).hexdigest()
    (tmp_path / "sw.yaml").write_text(CONFIG, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["train", "-c", "sw.yaml", "--dynamic", "sovereignty", "--examples", str(EXAMPLES), "--out", "sov.json"]
    )
    assert result.exit_code == 0, result.output
    assert "10 positive, 14 negative example(s)" in result.stdout
    assert "leave-one-out: precision" in result.stdout
    head = DynamicHead.load(tmp_path / "sov.json", "sovereignty")
    assert 0.05 <= head.threshold <= 0.95
    assert head.keyword_weight >= 0.0
    assert head.metrics["out_of_fold"] == "leave-one-out"
    (tmp_path / "sw.yaml").write_text(CONFIG + "    head: sov.json\n", encoding="utf-8")
    settings = load_settings("sw.yaml", secrets=False)
    built = build_classifier(settings.classifier, settings.taxonomy())
    assert isinstance(built, TransformerClassifier)
    assert built.similarity_dynamics == ()
    clear_in, clear_out = built.classify([HELD_OUT_IN, HELD_OUT_OUT])
    assert "sovereignty" in clear_in.labels
    assert "sovereignty" not in clear_out.labels
    assert "capex" in clear_out.labels  # the head's own dynamics are untouched
    assert hashlib.sha256(bundled.read_bytes()).hexdigest() == before


@pytest.mark.usefixtures("workdir")
def test_train_refuses_to_write_over_the_bundled_head(tmp_path: Path) -> None:
    (tmp_path / "sw.yaml").write_text(CONFIG, encoding="utf-8")
    bundled = str(resources.files("stackwatch").joinpath("models", "head.json"))
    result = CliRunner().invoke(
        cli, ["train", "-c", "sw.yaml", "--dynamic", "sovereignty", "--examples", str(EXAMPLES), "--out", bundled]
    )
    assert result.exit_code != 0
    assert "that is the classifier head" in result.output


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"text": "a", "label": true}', "{not json"], "examples.jsonl:2: not JSON"),
        (['{"text": "a", "label": "yes"}'], "examples.jsonl:1: label: expected true or false, got 'yes'"),
        (['{"text": "a"}'], "examples.jsonl:1: label: missing"),
        (['{"text": "a", "labels": ["x"], "label": true}'], "examples.jsonl:1: unknown key(s) labels"),
        (['{"text": "  ", "label": true}'], "examples.jsonl:1: no text"),
        (['["a", true]'], "examples.jsonl:1: expected a JSON object"),
        (
            ['{"text": "a", "label": true}', "", '{"text": "a", "label": false}'],
            "examples.jsonl:3: the same text as line 1",
        ),
        (
            [json.dumps({"text": f"t{n}", "label": n < 3}) for n in range(20)],
            "3 positive and 17 negative example(s); training needs at least 5 of each",
        ),
    ],
)
def test_a_bad_examples_file_is_a_clear_error(tmp_path: Path, lines: list[str], expected: str) -> None:
    (tmp_path / "examples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        read_examples(tmp_path / "examples.jsonl")
    assert expected in str(error.value)


@pytest.mark.usefixtures("workdir")
def test_the_cli_reports_a_bad_examples_file_and_bad_combinations(tmp_path: Path) -> None:
    (tmp_path / "sw.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "few.jsonl").write_text('{"text": "a", "label": true}\n', encoding="utf-8")
    runner = CliRunner()
    few = runner.invoke(cli, ["train", "-c", "sw.yaml", "--dynamic", "sovereignty", "--examples", "few.jsonl"])
    assert few.exit_code == 1
    assert "few.jsonl: 1 positive and 0 negative example(s)" in few.output
    unknown = runner.invoke(cli, ["train", "-c", "sw.yaml", "--dynamic", "weather", "--examples", "few.jsonl"])
    assert "--dynamic weather: not in the taxonomy" in unknown.output
    alone = runner.invoke(cli, ["train", "-c", "sw.yaml", "--dynamic", "sovereignty"])
    assert alone.exit_code == 2
    assert "--dynamic and --examples go together" in alone.output
    neither = runner.invoke(cli, ["train", "-c", "sw.yaml"])
    assert "give labelled DATA" in neither.output


def test_a_head_for_another_encoder_falls_back_to_similarity_and_a_wrong_file_is_a_clear_error(
    classifier: TransformerClassifier, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    encoder = classifier.encoder
    head = DynamicHead(
        "sovereignty", "v", encoder.name, "another-adapter", (0.0,) * encoder.dimension, 0.0, 0.0, (), 0.5
    )
    head.save(tmp_path / "other.json")
    with caplog.at_level(logging.WARNING):
        fallback = custom(classifier, replace(SOVEREIGNTY, head=tmp_path / "other.json"))
    assert fallback.similarity_dynamics == ("sovereignty",)
    assert "scored by similarity" in caplog.text
    with pytest.raises(ClassifierError, match=r"dynamics\[edge\]\.head: .*a head for 'sovereignty', not for 'edge'"):
        custom(classifier, replace(Taxonomy.builtin()["edge"], head=tmp_path / "other.json"))
    (tmp_path / "broken.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ClassifierError, match="not a stackwatch dynamic head"):
        custom(classifier, replace(SOVEREIGNTY, head=tmp_path / "broken.json"))


def test_a_head_scores_by_its_weights_and_keyword_and_a_configured_threshold_overrides_its_cut(
    classifier: TransformerClassifier, tmp_path: Path
) -> None:
    encoder = classifier.encoder
    keyword_only = DynamicHead(
        "sovereignty",
        "v",
        encoder.name,
        encoder.adapter,
        (0.0,) * encoder.dimension,
        -1.0,
        2.0,
        ("gigafactor(y|ies)",),
        0.5,
    )
    dynamic = replace(SOVEREIGNTY, head=keyword_only.save(tmp_path / "keyword.json"))
    scored = custom(classifier, dynamic)
    assert scored.similarity_dynamics == ()
    hit, miss = scored.classify(["Brussels picks five AI gigafactories", "Brussels picks five AI factories"])
    assert (hit.scores["sovereignty"], miss.scores["sovereignty"]) == (
        round(1 / (1 + math.exp(-1)), 4),
        round(1 / (1 + math.exp(1)), 4),
    )
    assert ("sovereignty" in hit.labels, "sovereignty" in miss.labels) == (True, False)
    stricter = custom(classifier, replace(dynamic, threshold=0.8))
    assert "sovereignty" not in stricter.classify(["Brussels picks five AI gigafactories"])[0].labels
