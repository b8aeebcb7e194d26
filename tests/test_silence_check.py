"""A silence that no configured rule's alerts can match is stored with a warning naming the rules, and the nearest
rule for a misspelt ``alertname``; one that some rule's alerts may match is stored without a word."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwatch.pipeline.cli.main import cli
from stackwatch.signals.alerting import Matcher
from stackwatch.signals.conditions import Quiet, Rule, Threshold
from stackwatch.signals.silence_check import silence_warnings
from stackwatch.storage.store import Store
from tests.test_alerts import config

RULES = [
    Rule("capex-surge", Threshold("capex", threshold=3)),
    Rule("decoupling-any", Threshold("decoupling"), severity="critical", labels={"team": "markets"}),
    Rule("edge-gap", Quiet("edge", timedelta(hours=3))),
]


def warnings_for(*texts: str) -> list[str]:
    return silence_warnings([Matcher.parse(text) for text in texts], RULES)


@pytest.mark.parametrize(
    "matchers",
    [
        ["alertname=capex-surge"],
        ["alertname=~cap.*"],
        ["alertname!=capex-surge"],
        ["severity=critical"],
        ["team=markets", "alertname=decoupling-any"],
        ["kind=silence"],
        ["dynamic=anything", "window=1d"],  # labels the firing value gives: only the firing tells
        ["alertname=capex-surge", "dynamic=~cap.*"],
    ],
)
def test_a_silence_some_rule_may_match_gets_no_warning(matchers: list[str]) -> None:
    assert warnings_for(*matchers) == []


def test_a_misspelt_alertname_gets_the_nearest_rule_and_the_configured_ones() -> None:
    (warning,) = warnings_for("alertname=capex-surg")
    assert warning.startswith(
        "no configured rule's alerts match alertname=capex-surg (did you mean alertname=capex-surge?);"
        " the configured rules: capex-surge, decoupling-any, edge-gap."
    )
    assert "stored all the same" in warning


@pytest.mark.parametrize(
    ("matchers", "shown"),
    [
        (["alertname=zzz"], "alertname=zzz;"),  # nothing near: no suggestion
        (["alertname=~cpx.*"], "alertname=~cpx.*;"),
        (["alertname=capex-surge", "severity=critical"], "alertname=capex-surge severity=critical;"),
        (["alertname=decoupling-any", "team=ops"], "alertname=decoupling-any team=ops;"),
        (["kind=spike"], "kind=spike;"),
    ],
)
def test_a_silence_no_rule_can_match_is_named_without_a_guess(matchers: list[str], shown: str) -> None:
    (warning,) = warnings_for(*matchers)
    assert f"match {shown} the configured rules: capex-surge, decoupling-any, edge-gap." in warning
    assert "did you mean" not in warning


def test_with_no_rules_configured_every_judged_matcher_warns() -> None:
    (warning,) = silence_warnings([Matcher.parse("alertname=capex-surge")], [])
    assert "the configured rules: none." in warning


def test_the_cli_warns_on_stderr_and_still_adds_the_silence(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    Store.open(db).close()
    path = str(config(tmp_path, db))  # rules surge, spike, quiet, msft; nothing listens on its web port
    runner = CliRunner()
    added = runner.invoke(cli, ["silence", "add", "-c", path, "alertname=surg", "--for", "1h"])
    assert added.exit_code == 0, added.output
    assert added.stdout.strip().startswith("sil_")
    assert added.stderr.startswith(
        "warning: no configured rule's alerts match alertname=surg (did you mean alertname=surge?);"
        " the configured rules: msft, quiet, spike, surge."
    )
    listed = runner.invoke(cli, ["silence", "list", "-c", path])
    assert added.stdout.strip() in listed.stdout
    quiet = runner.invoke(cli, ["silence", "add", "-c", path, "alertname=surge", "--for", "1h"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
