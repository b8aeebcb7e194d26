"""Analysts correct an article's labels: from the CLI, the API and the article page; training and eval use them.

Real DuckDB files, a real ``stackwatch sink`` serving the API and the dashboard, and the real CLI (the keyword
backend for ``eval``, so no model is loaded here).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.web.guard import BrowserRules
from stackwatch.signals.messages import Article, TaggedArticle
from stackwatch.storage import corrections
from stackwatch.storage.store import Batch, Store
from tests.helpers.api import ApiService, api_service

DYNAMICS = ("exclusivity", "capex", "decoupling", "edge")
WHEN = datetime(2026, 11, 2, 9, tzinfo=UTC)
TEXTS = {
    "a-tpu": ("Anthropic commits to a million Google TPUs", "The lab moves training off NVIDIA GPUs.", ("capex",)),
    "a-dc": ("Oracle raises its data-centre budget", "Capital spending rises to $25bn.", ("capex",)),
    "a-pc": ("Qualcomm laptops run a 13B model on device", "Inference leaves the cloud.", ()),
}


def tagged(key: str) -> TaggedArticle:
    title, summary, labels = TEXTS[key]
    article = Article(key, f"https://news.example/{key}", title, summary, "wire", "file", WHEN, WHEN)
    scores = {name: 0.9 if name in labels else 0.2 for name in DYNAMICS}
    return TaggedArticle(article, labels, scores, "model-v1", WHEN)


def filled_store(path: Path) -> Path:
    with Store.open(path) as store:
        store.write(Batch(tagged=[tagged(key) for key in TEXTS]))
    return path


def test_a_correction_decides_its_dynamic_and_the_newest_one_wins(tmp_path: Path) -> None:
    with Store.open(filled_store(tmp_path / "s.duckdb")) as store:
        first = corrections.correct_labels(
            store.connection, "a-tpu", add=["decoupling"], remove=["capex"], by="ana", now=WHEN
        )
        assert first == corrections.Corrected("a-tpu", ("decoupling",), ("capex",), 2)
        again = corrections.correct_labels(store.connection, "a-tpu", add=["capex"], by="bo", now=WHEN.replace(hour=10))
        assert again is not None
        assert again.labels == ("capex", "decoupling")
        # dynamics nobody corrected keep the model's label; the text is what the model read
        texts = corrections.corrected_texts(store.connection)
        assert [(t.id, t.labels) for t in texts] == [("a-tpu", ("capex", "decoupling"))]
        assert texts[0].content == "Anthropic commits to a million Google TPUs\nThe lab moves training off NVIDIA GPUs."


def test_a_correction_outlives_its_article(tmp_path: Path) -> None:
    with Store.open(filled_store(tmp_path / "s.duckdb")) as store:
        corrections.correct_labels(store.connection, "a-pc", add=["edge"], now=WHEN)
        store.connection.execute("DELETE FROM articles WHERE id = 'a-pc'")  # as retention would
        assert [(t.id, t.labels) for t in corrections.corrected_texts(store.connection)] == [("a-pc", ("edge",))]


def test_a_bad_correction_is_refused_with_the_reason_and_records_nothing(tmp_path: Path) -> None:
    with Store.open(filled_store(tmp_path / "s.duckdb")) as store:
        assert corrections.correct_labels(store.connection, "no-such", add=["edge"], now=WHEN) is None
        with pytest.raises(ValueError, match=r"capx: not a dynamic this article was scored on \(capex, decoupling"):
            corrections.correct_labels(store.connection, "a-dc", add=["capx"], now=WHEN)
        with pytest.raises(ValueError, match="edge: both added and removed"):
            corrections.correct_labels(store.connection, "a-dc", add=["edge"], remove=["edge"], now=WHEN)
        with pytest.raises(ValueError, match="at least one dynamic"):
            corrections.correct_labels(store.connection, "a-dc", now=WHEN)
        assert corrections.corrected_texts(store.connection) == []


def test_one_corrected_article_in_five_is_held_out_by_its_id() -> None:
    ids = [f"article-{n}" for n in range(2000)]
    held = [key for key in ids if corrections.held_out(key)]
    assert 300 < len(held) < 500
    assert held == [key for key in ids if corrections.held_out(key)]  # the same on every run


def test_the_cli_records_a_correction_in_the_file_and_eval_judges_the_held_out_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    filled_store(tmp_path / "s.duckdb")
    config = tmp_path / "c.yaml"
    # no service listens on this port, so the CLI writes the file itself
    config.write_text(yaml.safe_dump({"storage": {"path": "s.duckdb"}, "web": {"port": 1}}), encoding="utf-8")
    runner = CliRunner()
    refused = runner.invoke(cli, ["label", "-c", str(config), "a-dc", "--add", "capx"])
    assert refused.exit_code == 2
    assert "capx: not a configured dynamic" in refused.output
    missing = runner.invoke(cli, ["label", "-c", str(config), "nope", "--add", "edge"])
    assert missing.exit_code == 1
    assert "no article with id 'nope'" in missing.output
    done = runner.invoke(cli, ["label", "-c", str(config), "a-pc", "--add", "edge"])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "a-pc: edge (the model said (none))"

    assert not corrections.held_out("a-pc")  # trained on
    assert corrections.held_out("a-dc")  # kept to judge models by
    assert runner.invoke(cli, ["label", "-c", str(config), "a-dc", "--add", "exclusivity"]).exit_code == 0
    report = runner.invoke(cli, ["eval", "-c", str(config), "--backend", "keyword", "--feedback"])
    assert report.exit_code == 0, report.output
    assert "held-out corrections: 1 texts" in report.stdout
    neither = runner.invoke(cli, ["eval", "-c", str(config), "--backend", "keyword"])
    assert neither.exit_code == 2
    assert "give labelled DATA or --feedback" in neither.output


@pytest.fixture(scope="module")
def api(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiService]:
    directory = tmp_path_factory.mktemp("labels-api")
    filled_store(directory / "stackwatch.duckdb")
    with api_service(directory, broker) as running:
        yield running


@pytest.mark.integration
def test_the_api_records_a_correction_and_names_what_is_wrong(api: ApiService) -> None:
    url = f"{api.base}/api/articles/a-tpu/labels"
    answer = httpx.post(url, json={"add": ["decoupling"], "by": "ana"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "id": "a-tpu",
        "labels": ["capex", "decoupling"],
        "model_labels": ["capex"],
        "corrected": 1,
    }
    assert httpx.post(f"{api.base}/api/articles/nope/labels", json={"add": ["edge"]}, timeout=10).status_code == 404
    bad = httpx.post(url, json={"add": "edge", "remove": ["edge"]}, timeout=10)
    assert bad.status_code == 400
    assert "edge: both added and removed" in bad.json()["error"]
    unknown = httpx.post(url, json={"add": ["edge"], "why": "x"}, timeout=10)
    assert unknown.status_code == 400
    assert "unknown field(s) 'why'" in unknown.json()["error"]


@pytest.mark.integration
def test_the_article_page_form_corrects_a_label_and_a_forged_one_is_refused(api: ApiService) -> None:
    page = httpx.get(f"{api.base}/dashboard/article/a-dc", timeout=10)
    assert page.status_code == 200
    token = re.search(r'name="token" value="([0-9a-f]{64})"', page.text)
    assert token is not None, page.text
    assert '<button type="submit" name="remove" value="capex">not capex</button>' in page.text
    form_url = f"{api.base}/dashboard/article/a-dc/labels"
    same_origin = {"Origin": api.base}

    posted = httpx.post(form_url, data={"token": token[1], "add": "edge"}, headers=same_origin, timeout=10)
    assert posted.status_code == 303
    assert posted.headers["Location"] == "/dashboard/article/a-dc"
    answer = httpx.post(f"{api.base}/api/articles/a-dc/labels", json={"remove": ["decoupling"]}, timeout=10)
    assert answer.json()["labels"] == ["capex", "edge"]  # the form's edge, then the API's (no-op) removal

    forged = httpx.post(form_url, data={"token": "0" * 64, "add": "edge"}, headers=same_origin, timeout=10)
    assert forged.status_code == 403
    assert "out of date or not from this service" in forged.text
    other_article = httpx.post(
        f"{api.base}/dashboard/article/a-tpu/labels", data={"token": token[1], "add": "edge"}, headers=same_origin
    )
    assert other_article.status_code == 403  # a token is good for its own article only
    cross = httpx.post(form_url, data={"token": token[1], "add": "edge"}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert "cross-origin request refused" in cross.text
    no_origin = httpx.post(form_url, data={"token": token[1], "add": "edge"}, timeout=10)
    assert no_origin.status_code == 403
    assert "must come from a page of this service" in no_origin.text


def test_form_bodies_reach_dashboard_paths_only_and_only_from_a_page_of_the_service() -> None:
    rules = BrowserRules(names=frozenset({"127.0.0.1"}))
    form = {"Host": "127.0.0.1:6066", "Content-Type": "application/x-www-form-urlencoded"}
    same = {**form, "Origin": "http://127.0.0.1:6066"}
    assert rules.check("POST", "/dashboard/article/a/labels", same) is None
    assert rules.check("POST", "/dashboard/article/a/labels", {**form, "Sec-Fetch-Site": "same-origin"}) is None
    refused = rules.check("POST", "/dashboard/article/a/labels", form)
    assert refused is not None
    assert refused.status == 403
    api = rules.check("POST", "/api/silences", same)
    assert api is not None
    assert api.status == 415
