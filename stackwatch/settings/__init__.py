"""Stackwatch's configuration: one YAML file, one schema, environment overrides, errors that name the key.

    >>> settings = load_settings("stackwatch.yaml")      # doctest: +SKIP
    >>> settings.kafka.bootstrap_servers                 # doctest: +SKIP

Which file: ``-c PATH`` on the command line, else ``$STACKWATCH_CONFIG``, else ``./stackwatch.yaml``.
Overrides: ``STACKWATCH__SECTION__KEY=value`` (value read as YAML), e.g.
``STACKWATCH__KAFKA__BOOTSTRAP_SERVERS=kafka:9092``.

A file is checked in one pass and every problem is reported at once, each with its key: keys repeated in a
mapping (with both line numbers), then the schema, then the checks across sections (unknown dynamics, sources
and webhooks, duplicate names, malformed hosts). Webhook secrets are read from the environment and checked at
load; ``load_settings(path, secrets=False)`` is for commands that send nothing (an unset variable is then no
error).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from stackwatch.errors import ConfigError
from stackwatch.settings.alerts import (
    RULE_KINDS,
    AlertingSettings,
    RuleSettings,
    ThresholdRuleSettings,
    WebhookSettings,
)
from stackwatch.settings.base import Section, parse_duration
from stackwatch.settings.checks import References, reference_problems
from stackwatch.settings.digests import DigestSettings
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
from stackwatch.settings.yamlfile import read_yaml
from stackwatch.signals.taxonomy import Dynamic, Taxonomy

__all__ = [
    "AlertingSettings",
    "ClassifierSettings",
    "DemoSourceSettings",
    "DigestSettings",
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
    digests: list[DigestSettings] = []

    @model_validator(mode="after")
    def _cross_references(self) -> Settings:
        problems = reference_problems(References.of(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def taxonomy(self) -> Taxonomy:
        return Taxonomy.with_overrides(
            Dynamic(d.name, d.description, tuple(d.examples), tuple(d.keywords), d.threshold, d.head)
            for d in self.dynamics
        )


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The configuration file to read: explicit, else ``$STACKWATCH_CONFIG``, else ``./stackwatch.yaml``."""
    return Path(explicit or os.environ.get(ENV_CONFIG) or "stackwatch.yaml")


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None, *, secrets: bool = True
) -> Settings:
    """Read, override from the environment and validate a configuration file.

    ``secrets=False`` is for commands that send no webhook: a webhook secret variable that is not set is then
    no error (its ``secret`` stays None); one that is set is still checked.

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
        raw, duplicates = read_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: not valid YAML: {error}") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    return _validated(raw, str(file), environ, secrets, duplicates)


def settings_from_mapping(
    raw: Mapping[str, Any], origin: str = "<config>", environ: Mapping[str, str] | None = None, *, secrets: bool = True
) -> Settings:
    """Validate an already parsed configuration (environment overrides applied first)."""
    return _validated(raw, origin, environ, secrets, [])


def _validated(
    raw: Mapping[str, Any], origin: str, environ: Mapping[str, str] | None, secrets: bool, problems: list[str]
) -> Settings:
    """The settings, or one ConfigError listing every problem: ``problems`` found so far, overrides, schema, and
    the cross-section checks (run on the raw data when the schema refused it, so they are reported too)."""
    environ = os.environ if environ is None else environ
    problems = list(problems)
    data = _apply_env_overrides(dict(raw), environ, problems)
    try:
        settings = Settings.model_validate(data, context={"environ": environ, "secrets": secrets})
    except ValidationError as error:
        items = error.errors(include_url=False)
        problems += _describe(items)
        if any(item["loc"] for item in items):  # a section failed, so Settings' own cross-checks did not run
            problems += reference_problems(References.from_raw(data))
    else:
        if not problems:
            return settings
    raise ConfigError(f"{origin}: invalid configuration\n" + "\n".join(f"  {line}" for line in problems))


def _apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
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
                problems.append(f"{name} overrides {key!r}, which is not a section")
                break
            target = child
        else:
            try:
                target[keys[-1]] = yaml.safe_load(value) if value else None
            except yaml.YAMLError as error:
                problems.append(f"{name}: value is not valid YAML: {error}")
    return data


_KEY_FIRST = re.compile(r"^([a-z_][a-z0-9_]*): ")
"""A validator's message that starts with the key it is about (``secret_env: ...``): joined to the location."""


def _describe(items: list[ErrorDetails]) -> list[str]:
    lines = []
    for item in items:
        location = _location(item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        given = item.get("input")
        quiet = (
            item["type"] in {"missing", "extra_forbidden"}
            or isinstance(given, dict)
            or repr(given) in message
            or "secret" in location
        )
        suffix = "" if quiet else f" (got {given!r})"
        for text in message.split("\n"):
            key = _KEY_FIRST.match(text)
            if location and key:
                lines.append(f"{location}.{key.group(1)}: {text[key.end() :]}{suffix}")
            else:
                lines.append(f"{location}: {text}{suffix}" if location else text)
    return lines


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
