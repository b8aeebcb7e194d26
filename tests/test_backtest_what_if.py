"""``rules backtest --set RULE.KEY=VALUE``: the replay with one rule's key changed, validated as the file is,
and the file left as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from stackwatch.pipeline.cli.main import cli
from stackwatch.storage.store import Batch, Store
from tests.test_alerts import articles_for, config, scripted_history


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A configuration (rules surge, spike, quiet, msft) whose store holds the scripted history."""
    directory = tmp_path_factory.mktemp("what-if")
    db = directory / "history.duckdb"
    with Store.open(db) as store:
        store.write(Batch(tagged=articles_for(scripted_history())))
    return config(directory, db)


def backtest(path: Path, *overrides: str) -> Result:
    options = [item for override in overrides for item in ("--set", override)]
    return CliRunner().invoke(cli, ["rules", "backtest", "-c", str(path), "--since", "2026-05-01", *options])


def fired(result: Result) -> list[tuple[str, str, str]]:
    """(bucket_start, rule, status) of each row of the table."""
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    return [(cells[0], cells[1], cells[3]) for cells in rows if cells and cells[-1].startswith("alert_")]


def test_a_higher_threshold_replays_without_that_rules_firings_and_leaves_the_file(configured: Path) -> None:
    before = hashlib.sha256(configured.read_bytes()).hexdigest()
    as_configured = fired(backtest(configured))
    assert {rule for _, rule, _ in as_configured} >= {"surge", "spike"}
    higher = backtest(configured, "surge.value=100")
    assert "backtest: what if surge.value=100" in higher.stderr
    assert fired(higher) == [row for row in as_configured if row[1] != "surge"]
    assert hashlib.sha256(configured.read_bytes()).hexdigest() == before


def test_the_files_own_value_replays_as_the_file_does(configured: Path) -> None:
    assert fired(backtest(configured, "surge.value=3", "surge.for=2")) == fired(backtest(configured))


def test_a_shorter_for_fires_at_least_as_often(configured: Path) -> None:
    as_configured = [row for row in fired(backtest(configured)) if row[1] == "surge"]
    sooner = [row for row in fired(backtest(configured, "surge.for=1")) if row[1] == "surge"]
    assert len(sooner) > len(as_configured)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "surg.value=1",
            "'surg.value=1': no rule 'surg' (did you mean 'surge'?); the rules: surge, spike, quiet, msft",
        ),
        (
            "surge.valu=1",
            "'surge.valu=1': a threshold rule has no key 'valu' (did you mean 'value'?); its keys: cooldown, dedup,"
            " dynamic, entity, for, indicator, keep_firing_for, labels, op, severity, source, value, warmup, webhooks,"
            " window",
        ),
        ("surge.name=other", "'surge.name=other': a threshold rule has no key 'name';"),
        ("surge.value=lots", "'surge.value=lots': value: Input should be a valid number"),
        ("spike.baseline=1", "'spike.baseline=1': baseline: Input should be greater than or equal to 2"),
        ("surge.value=[1", "'surge.value=[1': the value is not valid YAML: "),
        ("surge.dynamic=nope", "surge.dynamic=nope: rules[0].dynamic: unknown dynamic 'nope' (known: "),
        ("surge", "'surge': expected RULE.KEY=VALUE, such as capex-surge.value=5"),
    ],
)
def test_a_bad_override_is_refused_naming_what_is_allowed(configured: Path, override: str, message: str) -> None:
    result = backtest(configured, override)
    assert result.exit_code == 2
    assert f"Invalid value for --set: {message}" in " ".join(result.output.split())
    assert "Traceback" not in result.output
