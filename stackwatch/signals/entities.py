"""Entities: a gazetteer of companies, products, chips and agencies, matched in one regex pass per text.

Matching is case-aware: ``aliases`` match in any case ("nvidia", "NVIDIA"), ``exact`` aliases only as written,
for names that are ordinary words or other things in other cases ("Meta", "Llama", "TPU", "DoD")::

    >>> gazetteer = Gazetteer([Entity("Meta", aliases=("meta platforms",), exact=("Meta", "Llama"))])
    >>> gazetteer.find("Meta trains Llama 4; a meta-analysis says nothing")
    {'Meta': 2}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_ENTITIES", "Entity", "Gazetteer"]


@dataclass(frozen=True, slots=True)
class Entity:
    """One named thing and the ways the news writes it."""

    name: str
    aliases: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()
    kind: str = "company"


DEFAULT_ENTITIES: tuple[Entity, ...] = (
    Entity("NVIDIA", ("nvidia", "cuda", "blackwell", "nvlink", "jensen huang"), ("Rubin", "GB200", "H100", "H200")),
    Entity("AMD", ("advanced micro devices", "lisa su"), ("AMD", "Instinct", "MI300X", "MI350", "MI400", "ROCm")),
    Entity("Broadcom", ("broadcom", "hock tan")),
    Entity("Microsoft", ("microsoft", "satya nadella"), ("Azure", "Maia")),
    Entity("OpenAI", ("openai", "chatgpt", "sam altman", "stargate")),
    Entity("Amazon", ("amazon", "trainium", "inferentia", "project rainier"), ("AWS", "Bedrock")),
    Entity("Google", ("google", "alphabet", "deepmind", "gemini"), ("TPU", "TPUs", "Ironwood", "Trillium")),
    Entity("Meta", ("meta platforms", "mark zuckerberg"), ("Meta", "Llama", "MTIA")),
    Entity("Oracle", ("oracle", "larry ellison"), ("OCI",)),
    Entity("CoreWeave", ("coreweave",)),
    Entity("Lambda", ("lambda labs",), ("Lambda Cloud", "Lambda Inc", "Lambda, Inc")),
    Entity("Together AI", ("together ai", "together.ai", "together computer")),
    Entity("Akamai", ("akamai",)),
    Entity("DeepSeek", ("deepseek",)),
    Entity("Anthropic", ("anthropic",), ("Claude",)),
    Entity("SoftBank", ("softbank", "masayoshi son")),
    Entity("Pentagon", ("pentagon", "department of defense", "department of war"), ("DoD", "DOD"), kind="agency"),
)


class Gazetteer:
    """Finds entity mentions: two compiled alternations (case-insensitive and exact), longest alias first."""

    def __init__(self, entities: Iterable[Entity] = DEFAULT_ENTITIES) -> None:
        self.entities = tuple(entities)
        folded: dict[str, str] = {}
        exact: dict[str, str] = {}
        for entity in self.entities:
            names = (*entity.aliases, *entity.exact) if (entity.aliases or entity.exact) else (entity.name,)
            for alias in names:
                if alias in entity.exact:
                    exact[alias] = entity.name
                else:
                    folded[alias.casefold()] = entity.name
        self._folded = folded
        self._exact = exact
        self._folded_re = _alternation(folded, re.IGNORECASE)
        self._exact_re = _alternation(exact, 0)

    def find(self, text: str) -> dict[str, int]:
        """Mentions per entity name in ``text`` (entities not mentioned are absent)."""
        found: dict[str, int] = {}
        if self._folded_re is not None:
            for match in self._folded_re.finditer(text):
                name = self._folded[match.group(0).casefold()]
                found[name] = found.get(name, 0) + 1
        if self._exact_re is not None:
            for match in self._exact_re.finditer(text):
                name = self._exact[match.group(0)]
                found[name] = found.get(name, 0) + 1
        return found

    def names(self) -> list[str]:
        return [entity.name for entity in self.entities]


def _alternation(aliases: Mapping[str, str], flags: int) -> re.Pattern[str] | None:
    if not aliases:
        return None
    ordered = sorted(aliases, key=lambda alias: (-len(alias), alias))
    # (?<!\w) / (?!\w) rather than \b: aliases may start or end with punctuation ("together.ai", "Lambda, Inc").
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(alias) for alias in ordered) + r")(?!\w)", flags)
