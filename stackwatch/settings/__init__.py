"""Stackwatch's configuration: one YAML file, one schema, environment overrides, errors that name the key.

    >>> settings = load_settings("stackwatch.yaml")      # doctest: +SKIP
    >>> settings.kafka.bootstrap_servers                 # doctest: +SKIP

Which file: ``-c PATH`` on the command line, else ``$STACKWATCH_CONFIG``, else ``./stackwatch.yaml``.
Overrides: ``STACKWATCH__SECTION__KEY=value`` (value read as YAML), e.g.
``STACKWATCH__KAFKA__BOOTSTRAP_SERVERS=kafka:9092``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from stackwatch.errors import ConfigError
from stackwatch.settings.alerts import (
    RULE_KINDS,
    AlertingSettings,
    RuleSettings,
    ThresholdRuleSettings,
    WebhookSettings,
)
from stackwatch.settings.base import Section, parse_duration
from stackwatch.settings.entities import EntitySettings, IndicatorSettings
from stackwatch.settings.kafka import KafkaSettings
from stackwatch.settings.signals import ClassifierSettings, DynamicSettings
from stackwatch.settings.sources import (
    DemoSourceSettings,
    FileSourceSettings,
    RssSourceSettings,
    SourceSettings,
)
from stackwatch.settings.sql import SqlSettings
from stackwatch.settings.storage import StateSettings, StorageSettings
from stackwatch.settings.web import LogSettings, WebSettings
from stackwatch.signals.taxonomy import Dynamic, Taxonomy

__all__ = [
    "AlertingSettings",
    "ClassifierSettings",
    "DemoSourceSettings",
    "DynamicSettings",
    "FileSourceSettings",
    "KafkaSettings",
    "LogSettings",
    "RssSourceSettings",
    "RuleSettings",
    "Settings",
    "SourceSettings",
    "StateSettings",
    "StorageSettings",
    "ThresholdRuleSettings",
    "WebSettings",
    "WebhookSettings",
    "config_path",
    "load_settings",
    "parse_duration",
    "settings_from_mapping",
]

ENV_CONFIG = "STACKWATCH_CONFIG"
ENV_OVERRIDE_PREFIX = "STACKWATCH__"


class Settings(Section):
    """The whole configuration file."""

    kafka: KafkaSettings = KafkaSettings()
    storage: StorageSettings = StorageSettings()
    sql: SqlSettings = SqlSettings()
    state: StateSettings = StateSettings()
    web: WebSettings = WebSettings()
    log: LogSettings = LogSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    entities: list[EntitySettings] = []
    indicators: IndicatorSettings = IndicatorSettings()
    dynamics: list[DynamicSettings] = []
    sources: list[SourceSettings] = []
    webhooks: list[WebhookSettings] = []
    rules: list[RuleSettings] = Field(default=[])
    alerting: AlertingSettings = AlertingSettings()

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        for key, names in (
            ("sources", [source.name for source in self.sources]),
            ("webhooks", [hook.name for hook in self.webhooks]),
            ("rules", [rule.name for rule in self.rules]),
            ("dynamics", [dynamic.name for dynamic in self.dynamics]),
        ):
            repeated = sorted(name for name, count in Counter(names).items() if count > 1)
            if repeated:
                raise ValueError(f"{key}: duplicate name(s) {', '.join(repeated)}")
        known_dynamics = self.taxonomy().names
        known_hooks = {hook.name for hook in self.webhooks}
        for index, rule in enumerate(self.rules):
            for dynamic in rule.referenced_dynamics():
                if dynamic not in known_dynamics:
                    raise ValueError(
                        f"rules[{index}].dynamic: unknown dynamic {dynamic!r} (known: {', '.join(known_dynamics)})"
                    )
            for source in rule.referenced_sources():
                if source not in {item.name for item in self.sources}:
                    raise ValueError(
                        f"rules[{index}].source: unknown source {source!r} "
                        f"(defined: {', '.join(item.name for item in self.sources) or 'none'})"
                    )
            for hook in rule.webhooks:
                if hook not in known_hooks:
                    raise ValueError(
                        f"rules[{index}].webhooks: unknown webhook {hook!r} "
                        f"(defined: {', '.join(sorted(known_hooks)) or 'none'})"
                    )
        for index, route in enumerate(self.alerting.routes):
            unknown = sorted(set(route.webhooks) - known_hooks)
            if unknown:
                raise ValueError(f"alerting.routes[{index}].webhooks: unknown webhook(s) {', '.join(unknown)}")
        return self

    def taxonomy(self) -> Taxonomy:
        return Taxonomy.with_overrides(
            Dynamic(d.name, d.description, tuple(d.examples), tuple(d.keywords)) for d in self.dynamics
        )


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The configuration file to read: explicit, else ``$STACKWATCH_CONFIG``, else ``./stackwatch.yaml``."""
    return Path(explicit or os.environ.get(ENV_CONFIG) or "stackwatch.yaml")


def load_settings(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, override from the environment and validate a configuration file.

    Raises :class:`ConfigError` naming the file and every bad key.
    """
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ConfigError(f"{file}: configuration file not found (use -c PATH or set {ENV_CONFIG})") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{file}: cannot read configuration file: {error}") from error
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: not valid YAML: {error}") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    return settings_from_mapping(raw, origin=str(file), environ=environ)


def settings_from_mapping(
    raw: Mapping[str, Any], origin: str = "<config>", environ: Mapping[str, str] | None = None
) -> Settings:
    """Validate an already parsed configuration (environment overrides applied first)."""
    environ = os.environ if environ is None else environ
    data = _apply_env_overrides(dict(raw), environ, origin)
    try:
        return Settings.model_validate(data, context={"environ": environ})
    except ValidationError as error:
        raise ConfigError(f"{origin}: invalid configuration\n{_describe(error)}") from None


def _apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str], origin: str) -> dict[str, Any]:
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_OVERRIDE_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_OVERRIDE_PREFIX) :].split("__") if part]
        if not keys:
            continue
        target = data
        for key in keys[:-1]:
            child = target.get(key)
            if child is None:
                child = target[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{origin}: {name} overrides {key!r}, which is not a section")
            target = child
        try:
            target[keys[-1]] = yaml.safe_load(value) if value else None
        except yaml.YAMLError as error:
            raise ConfigError(f"{name}: value is not valid YAML: {error}") from error
    return data


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False):
        location = _location(item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        given = item.get("input")
        quiet = item["type"] in {"missing", "extra_forbidden"} or isinstance(given, dict) or repr(given) in message
        suffix = "" if quiet else f" (got {given!r})"
        lines.append(f"  {location}: {message}{suffix}" if location else f"  {message}")
    return "\n".join(lines)


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in {"rss", "file", "demo", *RULE_KINDS, "function-after[_read_secret(), WebhookSettings]"}:
            continue  # discriminator tags and validator names say nothing to a user
        else:
            text += f".{part}" if text else str(part)
    return text
