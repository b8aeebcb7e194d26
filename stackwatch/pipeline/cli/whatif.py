"""What-if rule settings for ``rules backtest --set RULE.KEY=VALUE``: try another threshold without editing the file.

    stackwatch rules backtest --since 2026-05-01 --set capex-surge.value=5 --set capex-spike.baseline=48

``what_if(settings, ["capex-surge.value=5"])`` returns the settings with that rule's key replaced. VALUE is read as
YAML, as in the file (``5``, ``6h``, ``[ops]``), and the changed rule is validated as the file's rules are, then
checked against the rest of the file (dynamics, sources, webhooks). An unknown rule, a key the rule's kind does
not have, or a value the key refuses is a ``click.BadParameter`` that says which and lists what is allowed.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import click
import yaml
from pydantic import ValidationError

from stackwatch.settings import RuleSettings, Settings
from stackwatch.settings.checks import References, reference_problems

__all__ = ["rule_keys", "what_if"]

_FIXED = ("name", "kind")
"""Keys ``--set`` may not change: they make the rule another rule."""


def rule_keys(rule: RuleSettings) -> list[str]:
    """The keys ``--set`` may change on ``rule``, as the file spells them (``for``, not ``for_``)."""
    fields = type(rule).model_fields
    return sorted(field.alias or name for name, field in fields.items() if name not in _FIXED and not field.exclude)


def _nearest(word: str, names: Sequence[str]) -> str:
    found = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


def _parse(text: str) -> tuple[str, str, str]:
    target, equals, value = text.partition("=")
    name, dot, key = target.strip().rpartition(".")  # rule names may hold dots; keys never do
    if not equals or not dot or not name or not key:
        raise click.BadParameter(f"{text!r}: expected RULE.KEY=VALUE, such as capex-surge.value=5", param_hint="--set")
    return name, key, value


def what_if(settings: Settings, overrides: Sequence[str]) -> Settings:
    """``settings`` with each ``RULE.KEY=VALUE`` of ``overrides`` applied, in order."""
    rules = list(settings.rules)
    names = [rule.name for rule in rules]
    for text in overrides:
        name, key, raw = _parse(text)
        if name not in names:
            listed = ", ".join(names) or "none"
            raise click.BadParameter(
                f"{text!r}: no rule {name!r}{_nearest(name, names)}; the rules: {listed}", param_hint="--set"
            )
        index = names.index(name)
        rule = rules[index]
        keys = rule_keys(rule)
        if key not in keys:
            raise click.BadParameter(
                f"{text!r}: a {rule.kind} rule has no key {key!r}{_nearest(key, keys)}; its keys: {', '.join(keys)}",
                param_hint="--set",
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as error:
            reason = str(getattr(error, "problem", None) or error).splitlines()[0]
            raise click.BadParameter(f"{text!r}: the value is not valid YAML: {reason}", param_hint="--set") from None
        data = {**rule.model_dump(by_alias=True, exclude_unset=True), key: value}
        try:
            rules[index] = type(rule).model_validate(data)
        except ValidationError as error:
            reasons = "; ".join(item["msg"].removeprefix("Value error, ") for item in error.errors(include_url=False))
            raise click.BadParameter(f"{text!r}: {key}: {reasons}", param_hint="--set") from None
    changed = settings.model_copy(update={"rules": rules})
    problems = reference_problems(References.of(changed))
    if problems:
        raise click.BadParameter(f"{' '.join(overrides)}: {'; '.join(problems)}", param_hint="--set")
    return changed
