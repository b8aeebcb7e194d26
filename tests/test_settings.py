"""The configuration: one schema, errors that name the key, environment overrides, secrets from the env."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackwatch.errors import ConfigError
from stackwatch.settings import load_settings, settings_from_mapping

REPO = Path(__file__).resolve().parent.parent


def rejected(raw: dict[str, object], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(raw, environ=environ or {})
    return str(caught.value)


def test_the_bundled_demo_config_is_valid_and_uses_the_embedded_broker() -> None:
    settings = load_settings(REPO / "stackwatch.yaml", environ={})
    assert settings.kafka.bootstrap_servers is None
    assert any(source.type == "demo" for source in settings.sources)
    assert {getattr(rule, "dynamic", None) for rule in settings.rules} - {None} <= set(settings.taxonomy().names)
    assert {rule.kind for rule in settings.rules} >= {"spike", "trend", "source_health"}
    assert [digest.name for digest in settings.digests] == ["morning"]


def test_the_issue_example_shape_is_accepted() -> None:
    raw = yaml.safe_load(
        """
        kafka: {bootstrap_servers: null}
        storage: {path: data/stackwatch.duckdb}
        web: {host: 127.0.0.1, port: 6066}
        sources:
          - {name: wire, type: rss, url: "http://127.0.0.1:8000/feed.xml", interval: 60}
        webhooks:
          - {name: ops, url: "http://127.0.0.1:9000/hook", secret_env: STACKWATCH_OPS_SECRET, format: standard}
        rules:
          - {name: decoupling-any, kind: threshold, dynamic: decoupling, indicator: article_count, window: 1h,
             op: ">=", value: 1, webhooks: [ops]}
        """
    )
    settings = settings_from_mapping(raw, environ={"STACKWATCH_OPS_SECRET": "whsec_c2VjcmV0"})
    assert settings.webhooks[0].secret is not None
    assert settings.webhooks[0].secret.get_secret_value() == "whsec_c2VjcmV0"
    assert "c2VjcmV0" not in repr(settings)  # secrets never reach logs through repr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"kafka": {"bootstrap": "x:1"}}, "kafka.bootstrap: unknown key"),
        ({"kafka": {"bootstrap_servers": "nohostport"}}, "kafka.bootstrap_servers: expected host:port"),
        ({"web": {"port": "eighty"}}, "web.port"),
        ({"storage": {"flush_interval": "soon"}}, "storage.flush_interval: expected a duration"),
        (
            {"storage": {"flush_interval": "5s", "max_flush_interval": "2s"}},
            "storage: max_flush_interval (2s) is shorter than flush_interval (5s)",
        ),
        ({"sources": [{"name": "a", "type": "rss", "url": "not a url"}]}, "sources[0].url"),
        ({"sources": [{"name": "a", "type": "gopher"}]}, "sources[0]: Input tag 'gopher'"),
        ({"sources": [{"name": "a", "type": "demo"}, {"name": "a", "type": "demo"}]}, "duplicate name(s) a"),
        ({"sources": [{"type": "demo"}]}, "sources[0].name: required key is missing"),
        (
            {"rules": [{"name": "r", "kind": "threshold", "dynamic": "weather", "value": 1}]},
            "rules[0].dynamic: unknown dynamic 'weather'",
        ),
        (
            {"rules": [{"name": "r", "kind": "silence", "source": "nowhere", "after": "6h"}]},
            "rules[0].source: unknown source 'nowhere'",
        ),
        (
            {"rules": [{"name": "r", "kind": "silence", "dynamic": "edge", "source": "wire", "after": "6h"}]},
            "name exactly one of dynamic and source",
        ),
        (
            {"rules": [{"name": "r", "kind": "threshold", "dynamic": "edge", "value": 1, "webhooks": ["nope"]}]},
            "rules[0].webhooks: unknown webhook 'nope'",
        ),
        (
            {"rules": [{"name": "r", "kind": "threshold", "dynamic": "edge", "value": 1, "window": "3h"}]},
            "rules[0].window",
        ),
        (
            {
                "rules": [
                    {
                        "name": "r",
                        "kind": "cooccurrence",
                        "dynamic": "edge",
                        "entities": ["Apple"],
                        "indicator": "share",
                    }
                ]
            },
            "rules[0].indicator: Input should be 'article_count' or 'story_count' (got 'share')",
        ),
        ({"webhooks": [{"name": "w", "url": "ftp://x/"}]}, "webhooks[0].url"),
        (
            {"webhooks": [{"name": "w", "url": "http://x/", "secret_env": "STACKWATCH_MISSING"}]},
            "environment variable STACKWATCH_MISSING (named by secret_env) is not set",
        ),
    ],
)
def test_invalid_configs_are_rejected_with_the_key_named(raw: dict[str, object], expected: str) -> None:
    assert expected in rejected(raw)


def test_environment_overrides_any_key() -> None:
    settings = settings_from_mapping(
        {"kafka": {"bootstrap_servers": None}},
        environ={"STACKWATCH__KAFKA__BOOTSTRAP_SERVERS": "kafka:9092", "STACKWATCH__WEB__PORT": "7000"},
    )
    assert settings.kafka.bootstrap_servers == ["kafka:9092"]
    assert settings.web.port == 7000


def test_unreadable_files_are_reported_with_their_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "missing.yaml", environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("kafka: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken, environ={})
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(listing, environ={})


def test_local_clients_reach_a_wildcard_bind_on_loopback_with_the_token() -> None:
    settings = settings_from_mapping(
        {"web": {"host": "0.0.0.0", "port": 7000, "token_env": "SW_TOKEN"}}, environ={"SW_TOKEN": "s3cret"}
    )
    assert settings.web.client_target({"SW_TOKEN": "s3cret"}) == (
        "http://127.0.0.1:7000",
        {"Authorization": "Bearer s3cret"},
    )
    assert settings_from_mapping({}, environ={}).web.client_target({}) == ("http://127.0.0.1:6066", {})
