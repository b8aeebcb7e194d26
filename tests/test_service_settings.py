"""Each service is built from the settings sections it uses, and only those.

``build_runtime`` is the one place that splits the configuration; these specify what each part does with its
sections: the ingest role's sources and checkpoints (and what a reload of ``sources:`` keeps), the sink's
derivation, the deliverer's grouping and the rule engine's routes. Nothing here starts a connector or a client.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stackwatch.errors import ConfigError
from stackwatch.pipeline.roles.agents.rules import build_engine
from stackwatch.pipeline.roles.delivery import grouping_from
from stackwatch.pipeline.roles.derivation import build_derivation
from stackwatch.pipeline.roles.ingest import IngestService
from stackwatch.settings import KafkaSettings, Settings, StateSettings, settings_from_mapping
from stackwatch.settings.alerts import AlertingSettings
from stackwatch.settings.entities import IndicatorSettings


def feed(name: str, port: int = 9, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "rss", "url": f"http://127.0.0.1:{port}/{name}.xml", **extra}


def configured(**sections: Any) -> Settings:
    return settings_from_mapping(sections, secrets=False)


def ingest_for(sources: list[dict[str, Any]], state: Path) -> IngestService:
    settings = configured(sources=sources)
    return IngestService(KafkaSettings(app_id="sections"), settings.sources, StateSettings(path=state), ["127.0.0.1:9"])


async def test_the_ingest_role_polls_the_enabled_sources_and_checkpoints_under_the_state_path(tmp_path: Path) -> None:
    ingest = ingest_for([feed("wire"), feed("paused", enabled=False)], tmp_path)

    assert set(ingest.scheduler.states) == {"wire"}
    assert ingest.checkpoints.path("wire").parent == tmp_path / "checkpoints"
    assert ingest.producer.client_id == "sections-ingest"


async def test_a_reload_of_sources_keeps_the_state_of_sources_that_did_not_change(tmp_path: Path) -> None:
    ingest = ingest_for([feed("wire"), feed("moved"), feed("dropped")], tmp_path)
    before = dict(ingest.scheduler.states)

    reloaded = configured(sources=[feed("wire"), feed("moved", port=10), feed("added")]).sources
    await ingest.replace_sources(reloaded)

    states = ingest.scheduler.states
    assert set(states) == {"wire", "moved", "added"}
    assert states["wire"] is before["wire"]  # unchanged: same state, so nothing is fetched twice
    assert states["moved"] is not before["moved"]  # its settings changed: it starts afresh
    assert ingest.sources == tuple(reloaded)  # the next reload compares against these


def test_composites_may_weigh_only_dynamics_of_the_taxonomy() -> None:
    indicators = IndicatorSettings.model_validate({"composites": [{"name": "odd", "weights": {"weather": 1}}]})

    with pytest.raises(ConfigError, match=r"indicators\.composites\[0\]\.weights: unknown dynamic\(s\) weather"):
        build_derivation(Settings().taxonomy(), [], indicators)


def test_a_composite_over_custom_dynamics_is_derived() -> None:
    settings = configured(
        dynamics=[{"name": "weather", "description": "Storms that delay data-centre builds"}],
        indicators={"composites": [{"name": "odd", "weights": {"weather": 1, "capex": -1}}]},
    )

    derivation = build_derivation(settings.taxonomy(), settings.entities, settings.indicators)

    assert [composite.name for composite in derivation.composites] == ["odd"]


def test_the_alerting_section_is_the_delivery_grouping() -> None:
    alerting = AlertingSettings.model_validate(
        {"group_by": ["alertname"], "group_wait": "2m", "inhibit": [{"equal": ["dynamic"]}]}
    )

    grouping = grouping_from(alerting)

    assert grouping.group_by == ("alertname",)
    assert grouping.group_wait == timedelta(minutes=2)
    assert [inhibition.equal for inhibition in grouping.inhibitions] == [("dynamic",)]


def test_the_rule_engine_is_built_from_the_rules_and_routes_by_the_alerting_section() -> None:
    settings = configured(
        webhooks=[{"name": "ops", "url": "http://127.0.0.1:9/hook"}, {"name": "chat", "url": "http://127.0.0.1:9/c"}],
        rules=[{"name": "capex-surge", "kind": "threshold", "dynamic": "capex", "op": ">=", "value": 3}],
        alerting={"routes": [{"match": {"dynamic": "capex"}, "webhooks": ["chat"]}]},
    )

    engine = build_engine(settings.rules, settings.alerting)

    assert [rule.name for rule in engine.rules] == ["capex-surge"]
    assert list(engine.router({"dynamic": "capex"})) == ["chat"]
    assert list(engine.router({"dynamic": "edge"})) == []
