"""``dynamics:`` and ``classifier:`` sections: the taxonomy and how articles are tagged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from stackwatch.settings.base import Section, parse_duration
from stackwatch.signals.user_dynamics import keyword_problem

__all__ = ["ClassifierSettings", "DynamicSettings"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]
DynamicName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class DynamicSettings(Section):
    """One market dynamic. Entries named like a built-in dynamic replace it; new names add one.

    ``threshold`` and ``head`` are for the transformer backend (:mod:`stackwatch.signals.user_dynamics`).
    """

    name: DynamicName
    description: str = Field(min_length=1)
    examples: list[str] = []
    keywords: list[str] = Field(
        default=[],
        description="regular expressions (any case) for the keyword backend; the transformer backend counts a "
        "whole-word match as a feature",
    )
    threshold: float | None = Field(
        default=None,
        description="where it becomes a label: the cosine similarity when scored by similarity (null: "
        "classifier.similarity_threshold), the probability when a head scores it (null: the head's)",
    )
    head: Path | None = Field(default=None, description="its own head file from `stackwatch train --dynamic`")

    @model_validator(mode="before")
    @classmethod
    def _threshold_in_range(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("threshold") is not None:
            value = data["threshold"]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise ValueError(
                    f"threshold: dynamic {data.get('name')!r}: expected a number between 0 and 1 (both excluded), "
                    f"got {value!r}"
                )
        return data

    @model_validator(mode="after")
    def _keywords_compile(self) -> DynamicSettings:
        for pattern in self.keywords:
            if (problem := keyword_problem(pattern)) is not None:
                raise ValueError(f"keywords: dynamic {self.name!r}: keyword {pattern!r}: {problem}")
        return self


class ClassifierSettings(Section):
    """How the classify agent tags articles and how it batches them.

    ``backend``: ``transformer`` (encoder + trained head, the default), ``keyword`` (regular expressions) or
    ``zero-shot`` (an NLI model named in ``model``).
    """

    backend: Literal["keyword", "transformer", "zero-shot"] = "transformer"
    model: str | None = Field(
        default=None,
        description="Hugging Face model id or local path; null: the bundled all-MiniLM-L6-v2 (transformer only)",
    )
    head: Path | None = Field(default=None, description="head file from `stackwatch train`; null: the bundled head")
    precision: Literal["int8", "fp32"] = "int8"
    runtime: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="what runs the transformer backend's encoder: onnx (exported once with torch, then ONNX Runtime "
        "in the model processes, no torch there) or torch",
    )
    cache: Path | None = Field(
        default=None,
        description="directory of exported ONNX encoders (runtime onnx); null: $XDG_CACHE_HOME/stackwatch/encoders "
        "or ~/.cache/stackwatch/encoders",
    )
    max_length: int = Field(default=128, ge=8, le=512, description="tokens of title + text the encoder reads")
    inference_batch: int = Field(default=16, ge=1, le=512, description="texts per forward pass")
    threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="inference threads per model process; null: cores / processes, at least 1",
    )
    processes: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="model processes the service classifies in, each batch split between them; null: min(2, cores)",
    )
    similarity_threshold: float = Field(default=0.45, ge=-1.0, le=1.0)
    zero_shot_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    batch_size: int = Field(default=32, ge=1, le=4096)
    batch_timeout: Seconds = 0.2
