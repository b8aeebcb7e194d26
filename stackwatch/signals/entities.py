"""Entities: a gazetteer of companies, chips and products, people, countries, government bodies and funds, matched in
one regex pass per text.

Matching is case-aware: ``aliases`` match in any case ("nvidia", "NVIDIA"), ``exact`` aliases only as written,
for names that are ordinary words or other things in other cases ("Meta", "Llama", "TPU", "DoD"). A mention of an
entity with an ``owner`` (a chip, a product, a person) counts for its owner too::

    >>> gazetteer = Gazetteer([
    ...     Entity("Meta", aliases=("meta platforms",), exact=("Meta",)),
    ...     Entity("Llama", exact=("Llama",), kind="chip_or_product", owner="Meta"),
    ... ])
    >>> gazetteer.find("Meta trains Llama 4; a meta-analysis says nothing")
    {'Meta': 2, 'Llama': 1}
    >>> [(m.start, m.entity) for m in gazetteer.mentions("Meta trains Llama 4")]
    [(0, 'Meta'), (12, 'Llama')]

The built-in list (:data:`DEFAULT_ENTITIES`) is ``stackwatch/models/gazetteer.json``; the ``entities:`` section of
the configuration adds to it, replaces entries and drops them (``settings/entities.py``). Aliases are found by
RE2 (no backtracking: time linear in the text), in two programs, one case-insensitive and one exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, Literal, get_args

import re2

__all__ = [
    "DEFAULT_ENTITIES",
    "KINDS",
    "ORGANISATIONS",
    "Entity",
    "Gazetteer",
    "Kind",
    "Mention",
    "load_entities",
]

Kind = Literal["company", "chip_or_product", "person", "country", "government_body", "fund"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
"""What an entity is:

- ``company``: a business, a lab, a joint venture ("NVIDIA", "OpenAI", "Humain", "Stargate");
- ``chip_or_product``: a chip, a model, a service sold under its own name ("Blackwell", "TPU", "Claude");
- ``person``: someone the news quotes for an organisation ("Jensen Huang") or a state ("Emmanuel Macron");
- ``country``: a state as a whole ("Saudi Arabia", "France");
- ``government_body``: a ministry, agency or supranational body ("Pentagon", "METI", "European Commission");
- ``fund``: a state or public investment vehicle ("PIF", "MGX", "Mubadala").
"""
ORGANISATIONS: Final[frozenset[str]] = frozenset({"company", "country", "government_body", "fund"})
"""The kinds that can act (buy, build, sign): the only ones roles are given to (``signals/entity_roles.py``)."""


@dataclass(frozen=True, slots=True)
class Entity:
    """One named thing and the ways the news writes it; ``owner``: the entity a mention of this one counts for too
    (a chip's maker, a person's company)."""

    name: str
    aliases: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()
    kind: Kind = "company"
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Mention:
    """Where an entity is named in a text: ``text[start:end]``."""

    start: int
    end: int
    entity: str


def load_entities(text: str, origin: str = "gazetteer") -> tuple[Entity, ...]:
    """Entities from a gazetteer document: ``{"entities": [{"name", "kind", "aliases", "exact", "owner"}...]}``.

    ValueError naming ``origin`` and the entry when an entry is malformed."""
    try:
        entries = json.loads(text)["entities"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{origin}: expected a JSON object with an 'entities' list ({error})") from None
    entities = []
    for index, entry in enumerate(entries):
        where = f"{origin}: entities[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ValueError(f"{where}: expected an object with a non-empty 'name'")
        if unknown := set(entry) - {"name", "kind", "aliases", "exact", "owner"}:
            raise ValueError(f"{where} ({entry['name']}): unknown keys {sorted(unknown)}")
        kind = entry.get("kind", "company")
        if kind not in KINDS:
            raise ValueError(f"{where} ({entry['name']}): kind {kind!r} is not one of {', '.join(KINDS)}")
        entities.append(
            Entity(
                entry["name"],
                tuple(entry.get("aliases", ())),
                tuple(entry.get("exact", ())),
                kind,
                entry.get("owner"),
            )
        )
    return tuple(entities)


DEFAULT_ENTITIES: Final[tuple[Entity, ...]] = load_entities(
    resources.files("stackwatch.models").joinpath("gazetteer.json").read_text(encoding="utf-8"),
    "stackwatch/models/gazetteer.json",
)


class Gazetteer:
    """Finds entity mentions: two compiled alternations (case-insensitive and exact), longest alias first; where
    the two overlap, the earlier and then the longer mention wins."""

    def __init__(self, entities: Iterable[Entity] = DEFAULT_ENTITIES) -> None:
        self.entities = tuple(entities)
        self.by_name: Mapping[str, Entity] = {entity.name: entity for entity in self.entities}
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
        self._folded_re = _Alternation(folded, case_sensitive=False)
        self._exact_re = _Alternation(exact, case_sensitive=True)

    def mentions(self, text: str) -> list[Mention]:
        """Every mention in ``text``, in order, none overlapping another."""
        data = text.encode("utf-8")
        found: list[Mention] = []
        for start, end in self._folded_re.spans(text, data):
            name = self._folded.get(text[start:end].casefold())
            if name is not None:
                found.append(Mention(start, end, name))
        for start, end in self._exact_re.spans(text, data):
            if (name := self._exact.get(text[start:end])) is not None:
                found.append(Mention(start, end, name))
        found.sort(key=lambda mention: (mention.start, -mention.end))
        kept: list[Mention] = []
        for mention in found:
            if not kept or mention.start >= kept[-1].end:
                kept.append(mention)
        return kept

    def count(self, mentions: Iterable[Mention]) -> dict[str, int]:
        """Mentions per entity name, each also counted for the entity's owner (when the gazetteer has it)."""
        found: dict[str, int] = {}
        for mention in mentions:
            found[mention.entity] = found.get(mention.entity, 0) + 1
            owner = self.by_name[mention.entity].owner
            if owner is not None and owner in self.by_name and owner != mention.entity:
                found[owner] = found.get(owner, 0) + 1
        return found

    def find(self, text: str) -> dict[str, int]:
        """Mentions per entity name in ``text`` (entities not mentioned are absent)."""
        return self.count(self.mentions(text))

    def kind(self, name: str) -> Kind:
        """The kind of entity ``name`` (``company`` for a name the gazetteer does not hold)."""
        entity = self.by_name.get(name)
        return entity.kind if entity is not None else "company"

    def names(self) -> list[str]:
        return [entity.name for entity in self.entities]


_NOT_WORD = rb"[^\pL\pN_]"  # what Python's \w is not: a letter, a number or "_"


class _Alternation:
    """Literal aliases at word boundaries, longest first, found by one RE2 program (linear in the text).

    A boundary is a character that is not a letter, number or "_" (or the text's edge), so aliases may start or
    end with punctuation ("together.ai", "U.S."). The program reads the boundary characters around an alias, and
    the next search starts where the alias ends, so that "NVIDIA AMD" finds both."""

    def __init__(self, aliases: Iterable[str], *, case_sensitive: bool) -> None:
        ordered = sorted(set(aliases), key=lambda alias: (-len(alias), alias))
        self._program: Any = None
        if ordered:
            options = re2.Options()
            options.log_errors = False
            options.case_sensitive = case_sensitive
            options.max_mem = 64 << 20  # a few thousand aliases
            escaped = b"|".join(re2.escape(alias).encode("utf-8") for alias in ordered)
            self._program = re2.compile(b"(?:^|" + _NOT_WORD + b")(" + escaped + b")(?:" + _NOT_WORD + b"|$)", options)

    def spans(self, text: str, data: bytes) -> Iterator[tuple[int, int]]:
        """The (start, end) character offsets in ``text`` of each alias found in ``data`` (``text`` as UTF-8)."""
        if self._program is None:
            return
        ascii_only = len(data) == len(text)
        chars = done = position = 0
        while (match := self._program.search(data, position)) is not None:
            start, end = match.span(1)
            if ascii_only:
                yield start, end
            else:  # byte offsets to character offsets, decoding each stretch once
                chars += len(data[done:start].decode("utf-8"))
                length = len(data[start:end].decode("utf-8"))
                yield chars, chars + length
                chars += length
                done = end
            position = end
