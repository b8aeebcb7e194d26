"""``webhooks:`` and ``rules:`` sections."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, HttpUrl, SecretStr, ValidationInfo, model_validator

from stackwatch.settings.base import Section, parse_duration

__all__ = ["RuleSettings", "ThresholdRuleSettings", "WebhookSettings"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class WebhookSettings(Section):
    """A webhook target. Its secret is read from the environment variable ``secret_env``, never from the file."""

    name: Name
    url: HttpUrl
    secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    format: Literal["standard", "slack", "discord"] = "standard"
    timeout: Seconds = 10.0
    secret: SecretStr | None = Field(default=None, exclude=True, description="filled from secret_env at load")

    @model_validator(mode="after")
    def _read_secret(self, info: ValidationInfo) -> WebhookSettings:
        if self.secret_env is None or self.secret is not None:
            return self
        environ = (info.context or {}).get("environ", os.environ)
        value = environ.get(self.secret_env)
        if not value:
            raise ValueError(f"environment variable {self.secret_env} (named by secret_env) is not set")
        object.__setattr__(self, "secret", SecretStr(value))
        return self


class ThresholdRuleSettings(Section):
    """Fire when an indicator of a dynamic crosses a value within a window."""

    name: Name
    kind: Literal["threshold"]
    dynamic: str
    indicator: Literal["article_count"] = "article_count"
    window: Literal["1h", "1d"] = "1h"
    op: Literal[">", ">=", "<", "<=", "=="] = ">="
    value: float
    severity: Literal["info", "warning", "critical"] = "warning"
    webhooks: list[str] = []


RuleSettings = Annotated[ThresholdRuleSettings, Field(discriminator="kind")]
