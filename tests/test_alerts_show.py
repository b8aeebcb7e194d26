"""``stackwatch alerts show ID``: one alert in full, from a real store file (the CLI reads the file when no
service answers; the service answers ``GET /api/alerts/{id}`` with the same record)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from stackwatch.pipeline.cli.main import cli
from stackwatch.signals.conditions import Rule, Threshold
from stackwatch.signals.messages import Article, Observation, TaggedArticle
from stackwatch.signals.rules import RuleEngine, replay_observations
from stackwatch.storage import history
from stackwatch.storage.store import Batch, Store
from tests.helpers.api import api_service

T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)


def article(number: int) -> TaggedArticle:
    when = T0 + timedelta(minutes=number)
    item = Article(
        f"a{number}", f"https://wire.example/{number}", f"Capex story {number}", "", "wire", "file", when, when
    )
    return TaggedArticle(item, ("capex",), {"capex": 0.9}, "model-v1", when)


def fill(path: Path) -> Path:
    """Three capex articles, and the alerts of two rules on them, written as the sink writes them."""
    engine = RuleEngine([Rule("capex-surge", Threshold("capex", threshold=3)), Rule("capex-any", Threshold("capex"))])
    tagged = [article(n) for n in range(3)]
    fired = replay_observations(engine, [Observation.of(item, ()) for item in tagged])
    with Store.open(path) as store:
        store.write(Batch(tagged=tagged))
        store.write(Batch(alerts=fired))
    return path


def surge_id(path: Path) -> str:
    with Store.open(path, read_only=True) as store:
        row = store.connection.execute("SELECT id FROM alerts WHERE rule = 'capex-surge'").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return fill(tmp_path / "s.duckdb")


def test_an_alert_is_found_by_its_id_or_a_unique_start_of_it(store_path: Path) -> None:
    surge = surge_id(store_path)
    with Store.open(store_path, read_only=True) as store:
        record = history.alert_record(store.connection, surge)
        assert record is not None
        assert (record["rule"], record["status"], record["value"], record["threshold"]) == (
            "capex-surge",
            "firing",
            3,
            3,
        )
        assert [a["title"] for a in record["evidence"]["articles"]] == [f"Capex story {n}" for n in (2, 1, 0)]
        assert "FROM" in record["evidence"]["sql"]
        assert history.alert_record(store.connection, surge[:12]) == record
        assert history.alert_record(store.connection, "alert_") is None  # too short to be a start
        assert history.alert_record(store.connection, "alert_ffffffffff") is None


def test_the_cli_prints_the_alert_its_evidence_and_the_sql_to_reproduce_it(store_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"storage": {"path": str(store_path)}, "web": {"port": 1}}), encoding="utf-8")
    surge = surge_id(store_path)
    shown = CliRunner().invoke(cli, ["alerts", "show", "-c", str(config), surge[:14]])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"{surge}  firing  warning  rule capex-surge (threshold)")
    assert "evidence: 3 article(s)" in lines
    assert "its value, with stackwatch sql:" in lines
    assert "its articles counted, with stackwatch sql:" in lines
    assert "tagged by: model-v1" in lines
    missing = CliRunner().invoke(cli, ["alerts", "show", "-c", str(config), "alert_0000000000"])
    assert missing.exit_code == 1
    assert "no alert with id 'alert_0000000000'" in missing.output
    listed = CliRunner().invoke(cli, ["alerts", "-c", str(config), "-n", "5"])
    assert listed.exit_code == 0, listed.output
    assert "capex-surge" in listed.stdout


@pytest.mark.integration
def test_the_running_service_answers_the_record_and_the_cli_goes_through_it(broker: str, tmp_path: Path) -> None:
    surge = surge_id(fill(tmp_path / "stackwatch.duckdb"))  # the file the service below opens
    with api_service(tmp_path, broker) as api:
        answer = httpx.get(f"{api.base}/api/alerts/{surge[:12]}", timeout=10)
        assert answer.status_code == 200, answer.text
        assert (answer.json()["id"], answer.json()["rule"]) == (surge, "capex-surge")
        assert httpx.get(f"{api.base}/api/alerts/alert_0000000000", timeout=10).status_code == 404
        shown = CliRunner().invoke(cli, ["alerts", "show", "-c", str(api.config), surge[:12]])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0].startswith(f"{surge}  firing")
