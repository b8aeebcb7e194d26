"""An analyst sees why an article counts: each label comes with the sentence that drove it and that sentence's
share of the dynamic's logit, from the classifier to the store, the article page, alert evidence and
``stackwatch classify --explain``.

The real model (the default ONNX int8 path), real DuckDB files and the real web app.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from markupsafe import escape

from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.roles.classifiers import build_classifier
from stackwatch.settings import ClassifierSettings, settings_from_mapping
from stackwatch.signals.explanations import sentence_spans
from stackwatch.signals.head import Head
from stackwatch.signals.messages import Alert, Article, Explanation, TaggedArticle
from stackwatch.signals.taxonomy import Dynamic, Taxonomy
from stackwatch.signals.transformer import TransformerClassifier
from stackwatch.storage.evidence import evidence_for
from stackwatch.storage.explanations import explanations_of
from stackwatch.storage.store import Batch, Store
from tests.helpers.web_app import served_web

CAPEX = (
    "Separately, Microsoft raised its capital expenditure plan to $80 billion this fiscal year "
    "to build AI data centers."
)
MIXED = (
    "A bakery in Lyon won a regional prize for its croissants. The owner thanked her staff and her suppliers. "
    f"{CAPEX} The bakery plans to open a second shop in the spring."
)
HOSTILE = (
    "<script>alert('capex')</script> Microsoft raised its capital expenditure plan to $80 billion for AI data centers."
)
WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def classifier() -> TransformerClassifier:
    built = build_classifier(ClassifierSettings(), Taxonomy.builtin())
    assert isinstance(built, TransformerClassifier)
    return built


def _tagged(classifier: TransformerClassifier, key: str, title: str, summary: str) -> TaggedArticle:
    article = Article(key, f"https://news.example/{key}", title, summary, "wire", "file", WHEN, WHEN)
    result = classifier.classify([article.text])[0]
    return TaggedArticle(
        article, result.labels, result.scores, classifier.version, WHEN, result.embedding, result.explanations
    )


def _explanation(explanations: tuple[Explanation, ...], dynamic: str) -> Explanation:
    found = [item for item in explanations if item.dynamic == dynamic]
    assert len(found) == 1, explanations
    return found[0]


def test_a_capex_sentence_inside_an_unrelated_text_is_the_one_shown_for_capex(
    classifier: TransformerClassifier,
) -> None:
    result = classifier.classify([MIXED])[0]
    assert "capex" in result.labels
    assert [item.dynamic for item in result.explanations] == list(result.labels)  # one per label, in label order
    shown = _explanation(result.explanations, "capex")
    assert shown.sentence == CAPEX
    assert shown.score > 0


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("U.S. officials cleared the sale. AMD rose.", ["U.S. officials cleared the sale.", "AMD rose."]),
        ("The U.S. Commerce Department agreed.", ["The U.S. Commerce Department agreed."]),
        ("Dr. Su said so. Nvidia Corp. said it will build.", ["Dr. Su said so.", "Nvidia Corp. said it will build."]),
        ("The buyer is Lambda Inc. The deal closed.", ["The buyer is Lambda Inc.", "The deal closed."]),
        ("It costs $1.5bn. Shares rose!", ["It costs $1.5bn.", "Shares rose!"]),
        ('He said "we are done." Then he left.', ['He said "we are done."', "Then he left."]),
    ],
)
def test_an_abbreviation_does_not_end_a_sentence(text: str, sentences: list[str]) -> None:
    assert [text[start:end] for start, end in sentence_spans(text)] == sentences


def test_the_sentence_shares_and_the_special_tokens_add_up_to_the_dynamics_logit(
    classifier: TransformerClassifier,
) -> None:
    head = Head.bundled()
    weights = np.array(head.dynamics[head.names.index("capex")].weights, dtype=np.float32)
    bias = head.dynamics[head.names.index("capex")].bias
    embeddings, tokens = classifier.encoder.encode_tokens([MIXED])
    states, starts = tokens[0].states, tokens[0].starts
    count = len(states)
    shares = states @ weights / (count * np.linalg.norm(states.sum(axis=0) / count)) + bias / count
    firsts = [start for start, _ in sentence_spans(MIXED)]
    by_sentence = [
        shares[(starts >= first) & (starts < (firsts[index + 1] if index + 1 < len(firsts) else len(MIXED)))].sum()
        for index, first in enumerate(firsts)
    ]
    special = shares[starts < 0].sum()
    assert sum(by_sentence) + special == pytest.approx(float(embeddings[0] @ weights + bias), abs=1e-4)
    assert round(max(by_sentence), 3) == _explanation(classifier.classify([MIXED])[0].explanations, "capex").score


def test_the_same_text_alone_and_in_a_mixed_batch_gets_the_same_explanations(
    classifier: TransformerClassifier,
) -> None:
    alone = classifier.classify([MIXED])[0]
    neighbours = [" ".join([MIXED] * 6), "Nvidia", "Google prices TPUs below Nvidia's H100 for cloud customers"]
    for batch in ([*neighbours, MIXED], [MIXED, *neighbours, HOSTILE], [neighbours[0], MIXED, neighbours[1]]):
        mixed = classifier.classify(batch)[batch.index(MIXED)]
        assert mixed.labels == alone.labels
        assert [(item.dynamic, item.sentence) for item in mixed.explanations] == [
            (item.dynamic, item.sentence) for item in alone.explanations
        ]
        for before, after in zip(alone.explanations, mixed.explanations, strict=True):
            assert abs(before.score - after.score) <= 1e-3  # float rounding (1e-7) at the printed decimal


def test_a_user_dynamic_scored_by_similarity_is_explained_by_its_own_sentence(
    classifier: TransformerClassifier,
) -> None:
    sovereign = Dynamic(
        "sovereign",
        "Sovereign AI: governments and defence ministries building national AI compute.",
        ("France funds a national AI supercomputer for its defence ministry.",),
    )
    custom = TransformerClassifier(classifier.encoder, Head.bundled(), Taxonomy.with_overrides([sovereign]))
    national = "The UK government will build a national AI supercomputer for its defence and security agencies."
    [result] = custom.classify([f"A bakery in Lyon won a prize for its croissants. {national} The owner smiled."])
    assert "sovereign" in result.labels
    assert _explanation(result.explanations, "sovereign").sentence == national


def test_the_torch_runtime_explains_a_label_by_the_same_sentence() -> None:
    torch_classifier = build_classifier(ClassifierSettings(runtime="torch"), Taxonomy.builtin())
    result = torch_classifier.classify([MIXED, "Nvidia"])[0]
    assert _explanation(result.explanations, "capex").sentence == CAPEX


@pytest.mark.usefixtures("workdir")
def test_classify_explain_prints_the_sentence_that_drove_each_label() -> None:
    runner = CliRunner()
    answer = runner.invoke(cli, ["classify", "--explain", "--text", MIXED])
    assert answer.exit_code == 0, answer.output
    record = json.loads(answer.output)
    assert "capex" in record["labels"]
    [capex] = [item for item in record["explanations"] if item["dynamic"] == "capex"]
    assert capex["sentence"] == CAPEX
    assert capex["score"] > 0
    lines = json.dumps({"id": "x1", "title": "Bakery news", "text": MIXED}) + "\n"
    answer = runner.invoke(cli, ["classify", "--explain", "-"], input=lines)
    assert answer.exit_code == 0, answer.output
    assert CAPEX in [item["sentence"] for item in json.loads(answer.output)["explanations"]]
    plain = runner.invoke(cli, ["classify", "--text", MIXED])
    assert "explanations" not in json.loads(plain.output)  # without --explain the output is as before


def test_explanations_travel_in_the_record_and_old_records_still_parse(classifier: TransformerClassifier) -> None:
    tagged = _tagged(classifier, "a1", "Bakery news", MIXED)
    assert TaggedArticle.from_dict(json.loads(json.dumps(tagged.to_dict()))) == tagged
    old = tagged.to_dict()
    del old["explanations"]
    assert TaggedArticle.from_dict(old).explanations == ()
    with pytest.raises(ValueError, match="explanations: expected a list"):
        TaggedArticle.from_dict({**old, "explanations": "capex"})
    with pytest.raises(ValueError, match="sentence: expected a non-empty string"):
        TaggedArticle.from_dict({**old, "explanations": [{"dynamic": "capex", "score": 1.0}]})


def test_explanations_are_stored_with_the_article_and_replaced_with_its_labels(
    classifier: TransformerClassifier, tmp_path: Path
) -> None:
    tagged = _tagged(classifier, "a1", "Bakery news", MIXED)
    with Store.open(tmp_path / "s.duckdb") as store:
        store.write(Batch(tagged=[tagged]))
        stored = explanations_of(store.connection, "a1", WHEN)
        assert _explanation(stored, "capex").sentence == CAPEX
        assert stored == tuple(sorted(tagged.explanations, key=lambda item: item.dynamic))
        unlabelled = TaggedArticle(tagged.article, (), tagged.scores, "keyword-1", WHEN)
        store.write(Batch(tagged=[unlabelled]))  # written again without explanations: the old ones go
        assert explanations_of(store.connection, "a1", WHEN) == ()


def test_alert_evidence_carries_each_articles_explanation_for_the_alerts_dynamic(
    classifier: TransformerClassifier, tmp_path: Path
) -> None:
    tagged = _tagged(classifier, "a1", "Bakery news", MIXED)
    with Store.open(tmp_path / "s.duckdb") as store:
        store.write(Batch(tagged=[tagged, _tagged(classifier, "a2", "Town fair", "The town fair opens on Sunday.")]))
        evidence = evidence_for(store.connection, _alert("capex"))
    [article] = evidence["articles"]
    assert article["id"] == "a1"
    assert article["explanation"]["sentence"] == CAPEX
    assert article["explanation"]["score"] == _explanation(tagged.explanations, "capex").score


def _alert(dynamic: str) -> Alert:
    bucket = WHEN.replace(minute=0)
    return Alert(
        f"alert-{dynamic}", f"{dynamic}-spike", "warning", dynamic, "article_count", "1h", bucket, 1.0, 1.0, "m",
        ("ops",), bucket + timedelta(hours=1), dedup_key=f"{dynamic}-spike", values={"article_count": 1.0},
    )  # fmt: skip


async def test_the_article_page_and_its_alerts_show_the_driving_sentence_escaped(
    classifier: TransformerClassifier, tmp_path: Path
) -> None:
    tagged = _tagged(classifier, "h1", "Bakery news", f"A bakery in Lyon won a prize. {HOSTILE} The owner smiled.")
    assert _explanation(tagged.explanations, "capex").sentence == HOSTILE
    path = tmp_path / "stackwatch.duckdb"
    with Store.open(path) as store:
        store.write(Batch(tagged=[tagged], alerts=[_alert("capex")]))
    settings = settings_from_mapping({"storage": {"path": str(path)}}, environ={})
    async with served_web(settings, store=path) as base, httpx.AsyncClient(base_url=base) as client:
        answer = await client.get("/dashboard/article/h1?day=2026-11-02")
    assert answer.status_code == 200
    page = answer.text
    assert "<h2>Why it counts</h2>" in page
    assert "<script>" not in page
    assert f"<td><q>{escape(HOSTILE)}</q></td>" in page
    assert f'<q class="why">{escape(HOSTILE)}</q>' in page  # the evidence of the alert it fed
