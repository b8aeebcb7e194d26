"""``dynamics:`` and ``classifier:`` sections: the taxonomy and how articles are tagged."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from stackwatch.settings.base import Section, parse_duration

__all__ = ["ClassifierSettings", "DynamicSettings"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]
DynamicName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class DynamicSettings(Section):
    """One market dynamic. Entries named like a built-in dynamic replace it; new names add one."""

    name: DynamicName
    description: str = Field(min_length=1)
    examples: list[str] = []
    keywords: list[str] = Field(default=[], description="regular expressions for the keyword backend")


class ClassifierSettings(Section):
    """How the classify agent tags articles and how it batches them."""

    backend: Literal["keyword"] = "keyword"
    batch_size: int = Field(default=32, ge=1, le=4096)
    batch_timeout: Seconds = 0.2
