"""Builds the classifier the configuration asks for."""

from __future__ import annotations

from stackwatch.settings import Settings
from stackwatch.signals.classifier import Classifier, KeywordClassifier

__all__ = ["build_classifier"]


def build_classifier(settings: Settings) -> Classifier:
    """The configured backend over the configured taxonomy."""
    return KeywordClassifier(settings.taxonomy())
