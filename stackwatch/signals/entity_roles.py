"""Entity roles: what an article says an entity does, from sentence-level patterns around its mentions.

Three roles, for the two dynamics that have sides:

- ``buyer`` (decoupling): the one moving away from a vendor or building its own ("Meta" in "Meta shifts inference
  from NVIDIA to its own MTIA");
- ``displaced_vendor`` (decoupling): the one being moved away from ("NVIDIA" there);
- ``party`` (exclusivity): a party to an exclusive deal ("Microsoft" and "OpenAI" in "Azure remains the exclusive
  cloud for OpenAI").

An entity the text gives no role has none. Only organisations (companies, countries, government bodies, funds) get
a role; a chip, product or person stands for its owner ("from NVIDIA's H100s", "Zuckerberg said Meta...")::

    >>> gazetteer = Gazetteer()
    >>> text = "Meta shifts inference from NVIDIA to its own MTIA chips."
    >>> entity_roles(text, gazetteer.mentions(text), gazetteer.by_name)
    {'Meta': ('buyer',), 'NVIDIA': ('displaced_vendor',)}

How: the text is cut into sentences; in each, every mention becomes a token (``\\ue000<n>\\ue001``) and RE2
patterns (linear in the text, no backtracking) look for cues around the tokens. The displaced vendor is the
organisation right after a cue of moving away ("away from", "instead of", "reduce its reliance on", "replaces",
"shifts ... from"), with the ones listed after it ("from NVIDIA and AMD"). The buyer is the first organisation
before the cue in the cue's clause, else in the sentence, that does not name hardware bought ("Nvidia GPUs") or
own the next mention ("Saudi Arabia's Humain"); a sentence that builds its own ("its own chips", "in-house
accelerators", "is designing custom silicon") gives one too, and "custom chips for Meta" makes Meta one. Every
organisation in a sentence that speaks of exclusivity (and not of a non-exclusive deal) is a party. Sentences
longer than :data:`MAX_SENTENCE` characters give no roles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import re2

from stackwatch.signals.entities import ORGANISATIONS, Entity, Gazetteer, Kind, Mention

__all__ = ["MAX_SENTENCE", "ROLES", "EntityMatch", "Role", "entity_roles", "match_entities"]

Role = Literal["buyer", "displaced_vendor", "party"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
MAX_SENTENCE: Final = 1_000
"""Characters; a longer run of text without a sentence end is not a sentence the patterns were written for."""

_OPEN, _CLOSE = "\ue000", "\ue001"
_ENT = r"\x{E000}(\d+)\x{E001}"
_WORDS = r"(?:[^\s,;:()\x{E000}\x{E001}]+\s+){0,3}?"  # up to three words, not a mention nor past a comma
_NOUN = (
    r"(?:chips?|silicon|accelerators?|processors?|asics?|gpus?|tpus?|cpus?|npus?|hardware|data ?cent(?:er|re)s?|"
    r"infrastructure|(?:ai |language |foundation )?models?|servers?|clusters?|compute|cloud|supercomputers?|"
    r"\x{E000})"
)


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = False
    return options


def _compile(pattern: str) -> Any:
    return re2.compile(pattern, _options())


_ANY_CUE = _compile(  # every pattern below needs one of these words: a sentence without any is skipped
    r"\b(?:away|instead|rather|place of|alternatives? to|replac|ditch|dump|drop|abandon|phas|relian|dependen|"
    r"exposure|wean|free|ties|shift|mov|switch|migrat|transition|pivot|port|swap|displac|sidelin|los[eit]|own\b|"
    r"in-house|home-?grown|custom|proprietary|self-developed|exclusiv|sole\b|only\b)"
)
_SENTENCE_END = _compile(r"[.!?;]+(?:\s+|$)|\n+")
# cue, then (a few words later) the displaced vendor's token
_AWAY = _compile(
    r"\b(?:away from|instead of|rather than|in place of|alternatives? to|replac(?:e|es|ed|ing)|"
    r"ditch(?:es|ed|ing)?|dump(?:s|ed|ing)?|drop(?:s|ped|ping)|abandon(?:s|ed|ing)?|phas(?:e|es|ed|ing) out|"
    r"(?:reduc|cut|lessen|end|lower|limit|curb|decreas|shrink)\w*\s+(?:\w+\s+){0,2}?"
    r"(?:reliance|dependence|dependency|exposure) (?:on|upon|to)|less (?:reliant|dependent) (?:on|upon)|"
    r"wean(?:s|ed|ing)?(?: itself| themselves)? off|(?:break|breaks|breaking|broke) (?:free|away) from|"
    r"cut(?:s|ting)? ties with|(?:mov|migrat|shift|switch)\w*\s+(?:\w+\s+){0,2}?off|diversif\w* away from|"
    r"(?:shift|mov|switch|migrat|transition|pivot|port|swap)\w*\b.{0,80}?\bfrom)\s+" + _WORDS + _ENT
)
# the displaced vendor first: "NVIDIA is being replaced by...", "NVIDIA loses Meta as a customer"
_PASSIVE = _compile(
    _ENT + r"(?:['’]s)?\s+(?:\w+\s+){0,2}?(?:is|are|was|were|gets|got|being)\s+(?:being\s+)?"
    r"(?:replaced|displaced|dropped|ditched|dumped|sidelined|phased out|abandoned)\b"
)
_LOSES = _compile(_ENT + r"\s+(?:loses|lost|is losing|risks losing)\s+(?:\w+\s+){0,2}?" + _ENT)
# building its own: "its own chips", "its custom silicon", "in-house accelerators" ("custom" alone is often a vendor's)
_IN_HOUSE = _compile(
    r"\b(?:(?:its|their)\s+(?:(?:first|new|next|latest|second|third)\s+)?"
    r"(?:own|custom(?:-built|-designed| built| designed)?|proprietary)|in-house|home-?grown|"
    r"self-developed)\s+(?:[\w-]+\s+){0,2}?" + _NOUN
)
_CUSTOM = r"custom(?:-built|-designed| built| designed)?\s+(?:[\w-]+\s+){0,2}?" + _NOUN
# a builder without "its": "Microsoft is designing custom silicon" (but not custom chips "for" a customer, below)
_BUILDS_CUSTOM = _compile(r"\b(?:design|develop|build|buil|mak|creat|co-design|tap)\w*\s+(?:\w+\s+)?" + _CUSTOM)
# the customer of custom silicon: "Broadcom designs custom accelerators for Google and Meta"
_CUSTOM_FOR = _compile(r"\b" + _CUSTOM + r"\w*\s+for\s+" + _WORDS + _ENT)
# what follows a mention that names hardware bought, not a buyer: "Nvidia GPUs", "NVIDIA H100s", "AMD's chips"
_OBJECT = _compile(
    r"(?:['’]s)?\s*(?:\x{E000}|(?:[\w-]+\s+)?(?:gpus?|chips?|hardware|accelerators?|processors?|servers?|"
    r"systems?|parts|silicon|racks?|instances?)\b)"
)
_SEPARATOR = _compile(r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+)")
_EXCLUSIVE = _compile(
    r"\bexclusiv\w*|\bsole (?:\w+ )?(?:supplier|provider|partner|vendor|host)|"
    r"\bonly (?:\w+ )?(?:provider|supplier|partner)\b"
)
_NOT_EXCLUSIVE = _compile(r"\bnon-?exclusiv|\bnot (?:an? )?exclusiv")
_LIST = _compile(r"(?:['’]s)?(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&|nor)\s+|\s+)" + _ENT)
_POSSESSIVE = _compile(r"\x{E001}['’]s\s+" + _ENT)


@dataclass(frozen=True, slots=True)
class EntityMatch:
    """One entity of one text, as the store keeps it (``article_entities``)."""

    entity: str
    mentions: int
    kind: Kind
    roles: tuple[Role, ...] = ()


def match_entities(gazetteer: Gazetteer, text: str) -> list[EntityMatch]:
    """The entities ``text`` names, with their mentions, kinds and roles, by name::

    >>> match_entities(Gazetteer(), "Meta moves away from NVIDIA.")[0]
    EntityMatch(entity='Meta', mentions=1, kind='company', roles=('buyer',))
    """
    mentions = gazetteer.mentions(text)
    roles = entity_roles(text, mentions, gazetteer.by_name)
    return [
        EntityMatch(name, count, gazetteer.kind(name), roles.get(name, ()))
        for name, count in sorted(gazetteer.count(mentions).items())
    ]


def entity_roles(text: str, mentions: Sequence[Mention], entities: Mapping[str, Entity]) -> dict[str, tuple[Role, ...]]:
    """The roles ``text`` gives its organisations: entity name to its roles (sorted); entities with none are
    absent. ``mentions`` are the gazetteer's for ``text`` (:meth:`Gazetteer.mentions`), ``entities`` its entries
    by name."""
    found: dict[str, set[Role]] = {}
    if not mentions or _ANY_CUE.search(text) is None:
        return {}
    ordered = sorted(mentions, key=lambda mention: mention.start)
    first = 0  # the first mention not before the sentence: one walk over the mentions for all sentences
    for start, end in _sentences(text, ordered):
        while first < len(ordered) and ordered[first].start < start:
            first += 1
        last = first
        while last < len(ordered) and ordered[last].end <= end:
            last += 1
        if last == first or end - start > MAX_SENTENCE or _ANY_CUE.search(text[start:end]) is None:
            continue
        for name, role in _sentence_roles(text, start, end, ordered[first:last], entities):
            found.setdefault(name, set()).add(role)
    return {name: tuple(sorted(roles)) for name, roles in sorted(found.items())}


def _sentences(text: str, mentions: Sequence[Mention]) -> list[tuple[int, int]]:
    """Sentence spans; an end inside or just after a mention ("U.S.", "Lambda, Inc.") is not a sentence end."""
    ends = {mention.end for mention in mentions}
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.start() + 1 in ends and text[match.start()] == ".":
            continue
        spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _actor(mention: Mention, entities: Mapping[str, Entity]) -> str | None:
    """The organisation a mention stands for: itself, or the owner of a chip, product or person."""
    entity = entities.get(mention.entity)
    if entity is None:
        return None
    if entity.kind in ORGANISATIONS:
        return entity.name
    owner = entities.get(entity.owner) if entity.owner else None
    return owner.name if owner is not None and owner.kind in ORGANISATIONS else None


def _sentence_roles(
    text: str, start: int, end: int, mentions: Sequence[Mention], entities: Mapping[str, Entity]
) -> list[tuple[str, Role]]:
    parts: list[str] = []
    places: list[int] = []  # each token's offset in the skeleton
    at, length = start, 0
    for index, mention in enumerate(mentions):
        parts.append(text[at : mention.start])
        length += mention.start - at
        places.append(length)
        parts.append(f"{_OPEN}{index}{_CLOSE}")
        length += len(parts[-1])
        at = mention.end
    parts.append(text[at:end])
    skeleton = "".join(parts)
    actors = [_actor(mention, entities) for mention in mentions]
    roles: list[tuple[str, Role]] = []

    displaced: set[int] = set()
    cues: list[int] = []
    for match in _AWAY.finditer(skeleton):
        displaced |= _listed(skeleton, int(match.group(1)), match.end())
        cues.append(match.start())
    for match in _PASSIVE.finditer(skeleton):
        displaced.add(int(match.group(1)))
    for match in _LOSES.finditer(skeleton):
        displaced.add(int(match.group(1)))
        if (buyer := actors[int(match.group(2))]) is not None:
            roles.append((buyer, "buyer"))
    plural: set[int] = set()  # cues of "their own": a buyer only when the subject is a list ("Google and Meta")
    for match in _IN_HOUSE.finditer(skeleton):
        cues.append(match.start())
        if match.group(0)[:5].casefold() == "their":
            plural.add(match.start())
    customers = list(_CUSTOM_FOR.finditer(skeleton))
    for match in customers:
        buyers = {actors[index] for index in _listed(skeleton, int(match.group(1)), match.end())}
        roles += [(buyer, "buyer") for buyer in sorted(b for b in buyers if b is not None)]
    if not customers:
        cues += [match.start() for match in _BUILDS_CUSTOM.finditer(skeleton)]
    vendors = {actors[index] for index in displaced} - {None}
    roles += [(vendor, "displaced_vendor") for vendor in sorted(v for v in vendors if v is not None)]
    possessed = {int(match.group(1)) - 1 for match in _POSSESSIVE.finditer(skeleton)}  # "Saudi Arabia's Humain"
    if cues:
        cue = min(cues)
        ends = [place + len(f"{_OPEN}{index}{_CLOSE}") for index, place in enumerate(places)]
        eligible = [
            index
            for index in range(len(actors))
            if actors[index] is not None
            and places[index] < cue
            and index not in displaced
            and index not in possessed
            and actors[index] not in vendors
            and _OBJECT.match(skeleton[ends[index] : ends[index] + 40]) is None
        ]
        clause = max(skeleton.rfind(mark, 0, cue) for mark in ",;:(")  # the subject of the cue's clause, if named
        subject = next((index for index in eligible if places[index] > clause), eligible[0] if eligible else None)
        group = _group(skeleton, places, ends, subject) if subject is not None else []
        if cue in plural and len(group) < 2:
            group = []
        roles += [(actor, "buyer") for actor in dict.fromkeys(actors[i] for i in group) if actor is not None]

    if _EXCLUSIVE.search(skeleton) and not _NOT_EXCLUSIVE.search(skeleton):
        named = [actor for index, actor in enumerate(actors) if actor is not None and index not in possessed]
        roles += [(actor, "party") for actor in dict.fromkeys(named)]
    return roles


def _group(skeleton: str, places: Sequence[int], ends: Sequence[int], index: int) -> list[int]:
    """Token ``index`` and the tokens listed with it, before and after ("Google, Meta and Amazon")."""
    first = last = index
    while first > 0 and _SEPARATOR.fullmatch(skeleton[ends[first - 1] : places[first]]) is not None:
        first -= 1
    while last + 1 < len(places) and _SEPARATOR.fullmatch(skeleton[ends[last] : places[last + 1]]) is not None:
        last += 1
    return list(range(first, last + 1))


def _listed(skeleton: str, first: int, after: int) -> set[int]:
    """Token ``first`` and the tokens listed right after it ("NVIDIA and AMD", "NVIDIA's H100s")."""
    found = {first}
    while (match := _LIST.match(skeleton, after)) is not None:
        found.add(int(match.group(1)))
        after = match.end()
    return found
