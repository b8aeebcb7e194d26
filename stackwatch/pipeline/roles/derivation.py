"""What the sink's writes derive (entity mentions, composite indices, baselines), built from the settings.

Its own module, so the commands that open the store for writing (``stackwatch export``, ``rebuild``,
``retention``) build the same derivation as the sink without importing the sink's Kafka client.
"""

from __future__ import annotations

from collections.abc import Sequence

from stackwatch.errors import ConfigError
from stackwatch.settings.entities import EntitySettings, IndicatorSettings, gazetteer_from
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.storage.derive import Derivation

__all__ = ["build_derivation"]


def build_derivation(
    taxonomy: Taxonomy, entities: Sequence[EntitySettings], indicators: IndicatorSettings
) -> Derivation:
    """The store's derivation from the ``entities:`` and ``indicators:`` sections (composites checked here against
    the taxonomy's dynamics; ConfigError names the composite)."""
    known = set(taxonomy.names)
    for index, composite in enumerate(indicators.composites):
        unknown = sorted(set(composite.weights) - known)
        if unknown:
            raise ConfigError(
                f"indicators.composites[{index}].weights: unknown dynamic(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
    return Derivation(
        gazetteer_from(entities),
        tuple(composite.composite() for composite in indicators.composites),
        indicators.baseline_params(),
    )
