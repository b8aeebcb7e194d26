"""The taxonomy of market dynamics an article can speak to.

Four are built in; a configuration may replace their descriptions or add its own::

    >>> taxonomy = Taxonomy.builtin()
    >>> taxonomy.names
    ('exclusivity', 'capex', 'decoupling', 'edge')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BUILTIN_DYNAMICS", "Dynamic", "Taxonomy", "match_dynamic"]


@dataclass(frozen=True, slots=True)
class Dynamic:
    """A market dynamic: its name, what it means, examples and keyword patterns.

    The keyword backend labels by ``keywords`` alone; the transformer backend scores a dynamic its head has no
    weights for by similarity to ``description`` and ``examples`` (a keyword match raises it), labelled at
    ``threshold`` (None: ``classifier.similarity_threshold``), or by the trained file in ``head`` when it has one
    (see :mod:`stackwatch.signals.user_dynamics`).
    """

    name: str
    description: str
    examples: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    threshold: float | None = None
    """The cut on this dynamic's raw score: a cosine similarity, or a head's probability (None: the default)."""
    head: Path | None = None
    """A head file for this dynamic alone (``stackwatch train --dynamic``)."""


BUILTIN_DYNAMICS: tuple[Dynamic, ...] = (
    Dynamic(
        name="exclusivity",
        description="Exclusive cloud or model deals and lock-in, and antitrust scrutiny of such lock-in.",
        examples=("Azure remains the exclusive cloud for OpenAI's API.",),
        keywords=(
            r"\bexclusiv\w*\b.{0,80}\b(cloud|compute|model|api|partner\w*|deal|provider|license\w*)",
            r"\b(cloud|compute|model|api|partner\w*|deal)\b.{0,80}\bexclusiv\w*",
            r"\block-?in\b",
            r"\bright of first refusal\b",
            r"\b(antitrust|ftc|competition authority|cma|dma)\b.{0,100}\b(cloud|ai|openai|microsoft|nvidia)\b",
        ),
    ),
    Dynamic(
        name="capex",
        description="Hyperscaler and neocloud capital spending on AI data centres, GPUs and their financing.",
        examples=("Microsoft plans to spend $80 billion on AI data centres this fiscal year.",),
        keywords=(
            r"\bcap(ital )?ex\b|\bcapital (spending|expenditure)",
            r"\bdata cent(er|re)s?\b.{0,80}\b(build|billion|gigawatt|gw|campus|invest\w*|spend\w*)",
            r"\b(build|billion|gigawatt|invest\w*|spend\w*)\b.{0,80}\bdata cent(er|re)s?\b",
            r"\bstargate\b",
            r"\b(gpu|compute)\b.{0,60}\b(financ\w*|loan|debt|purchase order|orders?)\b",
        ),
    ),
    Dynamic(
        name="decoupling",
        description="Moves away from NVIDIA and CUDA dependence: custom silicon, AMD deals, efficient models.",
        examples=("Anthropic will train on up to a million Google TPUs.",),
        keywords=(
            r"\b(trainium|inferentia|tpus?|maia|mtia|ascend|gaudi|custom (silicon|chips?|asics?|accelerators?))\b",
            r"\bamd\b.{0,80}\b(instinct|mi\d{3}\w*|deal|gpus?)\b",
            r"\b(rocm|cuda alternative|reduce\w* (its )?(reliance|dependence) on nvidia)\b",
            r"\b(broadcom|marvell)\b.{0,80}\b(asic|xpu|custom|chip)",
            r"\bfewer gpus\b|\befficien\w+ (model|training)",
        ),
    ),
    Dynamic(
        name="edge",
        description="Inference leaving the central cloud: on-device and local models, edge AI, distributed inference.",
        examples=("Apple's on-device model runs Apple Intelligence features without the cloud.",),
        keywords=(
            r"\bon-?device\b",
            r"\b(edge (ai|inference|computing)|ai at the edge|inference at the edge)\b",
            r"\b(local(ly)? (llms?|models?|inference)|run(s|ning)? locally)\b",
            r"\b(npus?|ai pcs?|copilot\+ pcs?|llama\.cpp|ollama|gemini nano)\b",
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """An ordered set of dynamics, looked up by name."""

    dynamics: tuple[Dynamic, ...] = field(default=BUILTIN_DYNAMICS)

    @classmethod
    def builtin(cls) -> Taxonomy:
        return cls(BUILTIN_DYNAMICS)

    @classmethod
    def with_overrides(cls, overrides: Iterable[Dynamic]) -> Taxonomy:
        """The built-in dynamics with same-named entries replaced and new ones appended."""
        by_name = {dynamic.name: dynamic for dynamic in BUILTIN_DYNAMICS}
        for dynamic in overrides:
            by_name[dynamic.name] = dynamic
        return cls(tuple(by_name.values()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dynamic.name for dynamic in self.dynamics)

    def __iter__(self) -> Iterator[Dynamic]:
        return iter(self.dynamics)

    def __len__(self) -> int:
        return len(self.dynamics)

    def __getitem__(self, name: str) -> Dynamic:
        for dynamic in self.dynamics:
            if dynamic.name == name:
                return dynamic
        raise KeyError(name)


def match_dynamic(name: str, dynamics: Sequence[str]) -> str | None:
    """The dynamic of ``dynamics`` called ``name`` in any case, or None.

    >>> match_dynamic("CapEx", ["exclusivity", "capex"])
    'capex'
    """
    folded = name.casefold()
    return next((dynamic for dynamic in dynamics if dynamic.casefold() == folded), None)
