"""Configuration errors: all of a file's problems at once, each with its key; secrets checked when loaded.

A webhook secret the Standard Webhooks library cannot sign with is refused at start, naming the key and never
printing the value; commands that send nothing run without the secret variables set.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner

from stackwatch.errors import ConfigError
from stackwatch.pipeline.cli.main import cli
from stackwatch.pipeline.kafka.broker import free_port
from stackwatch.settings import load_settings, settings_from_mapping
from stackwatch.storage.store import Store

GOOD_SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes....").decode()
HOOK = {"name": "ops", "url": "http://127.0.0.1:9000/hook", "secret_env": "SW_TEST_HOOK_SECRET"}


def refused(raw: dict[str, object], environ: dict[str, str] | None = None, *, secrets: bool = True) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(raw, environ=environ or {}, secrets=secrets)
    return str(caught.value)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stackwatch.yaml"
    path.write_text(dedent(text).lstrip(), encoding="utf-8")
    return path


# -- webhook secrets ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("abcde", "it is not valid base64 (5 characters"),
        ("whsec_", "it is empty"),
        ("whsec_c2VjcmV0-LWZvci_0ZXN0cw", "it is not base64"),  # URL-safe alphabet: the library would drop - and _
        ("my webhook secret", "it is not base64"),
        ("whsec_c2VjcmV0====", "it is not base64"),
    ],
)
def test_a_secret_the_library_cannot_sign_with_is_refused_naming_the_key_not_the_value(
    secret: str, reason: str
) -> None:
    message = refused({"webhooks": [HOOK]}, {"SW_TEST_HOOK_SECRET": secret})
    assert (
        "webhooks[0].secret_env: environment variable SW_TEST_HOOK_SECRET does not hold a Standard Webhooks secret: "
        + reason
    ) in message
    value = secret.removeprefix("whsec_")
    assert not value or value not in message


@pytest.mark.parametrize(
    "secret",
    [
        GOOD_SECRET,
        GOOD_SECRET.removeprefix("whsec_"),  # the prefix is optional
        "whsec_c2VjcmV0",  # unpadded base64 is fine
    ],
)
def test_good_secrets_are_accepted(secret: str) -> None:
    settings = settings_from_mapping({"webhooks": [HOOK]}, environ={"SW_TEST_HOOK_SECRET": secret})
    assert settings.webhooks[0].secret is not None
    assert settings.webhooks[0].secret.get_secret_value() == secret


def test_commands_that_send_nothing_load_without_the_secret_variables() -> None:
    assert "SW_TEST_HOOK_SECRET (named by secret_env) is not set" in refused({"webhooks": [HOOK]})
    settings = settings_from_mapping({"webhooks": [HOOK]}, environ={}, secrets=False)
    assert settings.webhooks[0].secret is None
    # a variable that is set is still checked
    assert "webhooks[0].secret_env" in refused({"webhooks": [HOOK]}, {"SW_TEST_HOOK_SECRET": "abcde"}, secrets=False)


# -- the YAML file -----------------------------------------------------------------------------------------------


def test_a_key_given_twice_is_refused_with_its_path_and_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        kafka:
          app_id: one
          app_id: two
        webhooks:
          - name: ops
            url: http://127.0.0.1:9000/hook
            name: chat
        web: {port: 7000}
        web: {port: 7001}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value).splitlines()[1:] == [
        "  kafka.app_id: duplicate key (lines 2 and 3; the last would win)",
        "  webhooks[0].name: duplicate key (lines 5 and 7; the last would win)",
        "  web: duplicate key (lines 8 and 9; the last would win)",
    ]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        classifier: {backend: keyword}
        web:
          host: ""
          port: eighty
        webhooks:
          - {name: ops, url: "http://127.0.0.1:9000/hook", secret_env: SW_TEST_HOOK_SECRET}
          - {name: chat, url: "not a url"}
        rules:
          - {name: r1, kind: threshold, dynamic: weather, value: 1, webhooks: [ops, nope]}
          - {name: r2, kind: threshold, dynamic: capex, value: lots}
          - {name: r1, kind: spike, dynamic: capex}
        alerting:
          routes: [{match: {team: x}, webhooks: [ghost]}]
          group_wait: 10s
          group_wait: 20s
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"SW_TEST_HOOK_SECRET": "abcde"})
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: invalid configuration"
    problems = [line.strip().split(":", 1)[0] for line in lines[1:]]
    assert problems == [
        "alerting.group_wait",  # the YAML: a repeated key
        "web.port",  # the schema
        "webhooks[0].secret_env",
        "webhooks[1].url",
        "rules[1].value",
        "rules",  # the cross-checks, although the schema failed: duplicate names,
        "rules[0].dynamic",  # unknown dynamics and webhooks,
        "rules[0].webhooks",
        "alerting.routes[0].webhooks",
        "web.host",  # and hosts
    ]
    assert "abcde" not in str(caught.value)


def test_cross_checks_of_a_file_the_schema_accepts_are_all_reported() -> None:
    message = refused(
        {
            "rules": [
                {"name": "a", "kind": "threshold", "dynamic": "weather", "value": 1},
                {"name": "b", "kind": "silence", "source": "nowhere", "after": "6h"},
            ],
            "web": {"host": "http://0.0.0.0"},
        }
    )
    assert message.splitlines()[1:] == [
        "  rules[0].dynamic: unknown dynamic 'weather' (known: exclusivity, capex, decoupling, edge)",
        "  rules[1].source: unknown source 'nowhere' (defined: none)",
        "  web.host: expected a host name or an IP address, without scheme, port, path or spaces, got 'http://0.0.0.0'",
    ]


def test_a_digest_naming_an_unknown_dynamic_or_webhook_is_refused_when_the_file_loads() -> None:
    message = refused(
        {
            "webhooks": [{"name": "ops", "url": "http://127.0.0.1:9000/hook"}],
            "digests": [
                {"name": "morning", "dynamics": ["CapEx", "weather"], "webhooks": ["ops", "chat"]},
                {"name": "morning", "webhooks": ["ops"]},
            ],
        }
    )
    assert message.splitlines()[1:] == [
        "  digests: duplicate name(s) morning",
        "  digests[0].dynamics: unknown dynamic(s) weather (known: exclusivity, capex, decoupling, edge)",
        "  digests[0].webhooks: unknown webhook(s) chat (defined: ops)",
    ]


# -- hosts -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["", " ", "http://localhost", "localhost:6066", "[::1]", "my host", "a/b", "-x"])
def test_an_empty_or_malformed_web_host_is_refused_naming_the_key(host: str) -> None:
    assert "web.host: " in refused({"web": {"host": host}})


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "stackwatch.internal", "box_1"])
def test_hosts_and_addresses_are_accepted(host: str) -> None:
    assert settings_from_mapping({"web": {"host": host, "token_env": "T"}}, environ={}).web.host == host


def test_a_malformed_kafka_host_is_refused_naming_its_entry() -> None:
    message = refused({"kafka": {"bootstrap_servers": ["kafka:9092", "bad host:9092"]}})
    assert "kafka.bootstrap_servers[1]: host expected a host name or an IP address" in message
    assert settings_from_mapping({"kafka": {"bootstrap_servers": "[::1]:9092,kafka:9093"}}, environ={})


# -- commands ----------------------------------------------------------------------------------------------------


def config_with_hook(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        f"""
        classifier: {{backend: keyword}}
        storage: {{path: {tmp_path / "store.duckdb"}}}
        state: {{path: {tmp_path / "state"}}}
        web: {{host: 127.0.0.1, port: {free_port()}}}
        webhooks:
          - {{name: ops, url: "http://127.0.0.1:9/hook", secret_env: SW_TEST_HOOK_SECRET}}
        rules:
          - {{name: surge, kind: threshold, dynamic: capex, value: 3, webhooks: [ops]}}
        """,
    )


def test_stackwatch_sql_runs_with_a_webhook_secret_variable_unset(tmp_path: Path) -> None:
    config = config_with_hook(tmp_path)
    with Store.open(tmp_path / "store.duckdb"):
        pass
    result = CliRunner().invoke(
        cli, ["sql", "-c", str(config), "SELECT 41 + 1 AS answer", "--format", "csv"], env={"SW_TEST_HOOK_SECRET": None}
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["answer", "42"]


def test_rules_check_refuses_a_malformed_secret_naming_the_key(tmp_path: Path) -> None:
    config = config_with_hook(tmp_path)
    result = CliRunner().invoke(cli, ["rules", "check", "-c", str(config)], env={"SW_TEST_HOOK_SECRET": "abcde"})
    assert result.exit_code == 1
    assert "webhooks[0].secret_env: environment variable SW_TEST_HOOK_SECRET does not hold" in result.output
    assert "abcde" not in result.output
    fine = CliRunner().invoke(cli, ["rules", "check", "-c", str(config)], env={"SW_TEST_HOOK_SECRET": None})
    assert fine.exit_code == 0, fine.output


def test_stackwatch_up_refuses_a_malformed_secret_before_starting(tmp_path: Path) -> None:
    config = config_with_hook(tmp_path)
    environ = {**os.environ, "SW_TEST_HOOK_SECRET": "abcde", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "stackwatch.pipeline.cli", "up", "-c", str(config)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "webhooks[0].secret_env: environment variable SW_TEST_HOOK_SECRET does not hold" in done.stderr
    assert "abcde" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_stackwatch_receive_refuses_a_malformed_secret_too() -> None:
    result = CliRunner().invoke(
        cli, ["receive", "--port", "0", "--secret-env", "SW_TEST_HOOK_SECRET"], env={"SW_TEST_HOOK_SECRET": "abcde"}
    )
    assert result.exit_code == 1
    assert "--secret-env: SW_TEST_HOOK_SECRET does not hold a Standard Webhooks secret" in result.output
    assert "abcde" not in result.output
