"""Rule predicates over entities (co-occurrence, first-seen): pure functions over plain values.

The rules stage gets each article's entities in its ``Observation``; the ``Cooccurrence`` and ``FirstSeen``
conditions of ``signals/conditions.py`` call these::

    >>> cooccurs({"exclusivity"}, {"Microsoft", "OpenAI"}, "exclusivity", ("Microsoft",))
    True
    >>> first_seen("Microsoft", "exclusivity", "2026-05-10", {}, days=30)
    True
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date, timedelta

__all__ = ["cooccurrence_count", "cooccurs", "first_seen", "names"]


def cooccurs(
    dynamics: Collection[str], entities: Collection[str], dynamic: str, wanted: Iterable[str], *, every: bool = True
) -> bool:
    """Does an article tagged with ``dynamics`` and naming ``entities`` show ``dynamic`` with the wanted entities?

    ``every``: all of ``wanted`` must appear (else any one is enough). Entity names compare case-insensitively.
    """
    return dynamic in dynamics and names(entities, wanted, every=every)


def names(entities: Collection[str], wanted: Iterable[str], *, every: bool = True) -> bool:
    """Do ``entities`` (an article's) include all of ``wanted`` (``every``), or any one of them? Case-insensitive.

    >>> names({"NVIDIA", "OpenAI"}, ("nvidia", "AMD"), every=False)
    True
    """
    named = {entity.casefold() for entity in entities}
    wanted_set = {entity.casefold() for entity in wanted}
    return wanted_set <= named if every else bool(wanted_set & named)


def cooccurrence_count(
    articles: Iterable[tuple[Collection[str], Collection[str]]],
    dynamic: str,
    wanted: Iterable[str],
    *,
    every: bool = True,
) -> int:
    """How many ``(dynamics, entities)`` articles of a bucket co-mention ``dynamic`` and the wanted entities."""
    wanted = tuple(wanted)
    return sum(cooccurs(dyns, ents, dynamic, wanted, every=every) for dyns, ents in articles)


def first_seen(entity: str, dynamic: str, day: str | date, last_seen: Mapping[str, str], *, days: int) -> bool:
    """Is ``entity`` new in ``dynamic`` on ``day``: not seen with it in the ``days`` days before?

    ``last_seen`` maps ``"dynamic|entity"`` (entity casefolded) to the ISO date it was last seen; the caller
    updates it after asking (``last_seen[key] = day``) so the next article is not "first" again.
    """
    moment = day if isinstance(day, date) else date.fromisoformat(day)
    previous = last_seen.get(f"{dynamic}|{entity.casefold()}")
    if previous is None:
        return True
    return moment - date.fromisoformat(previous) > timedelta(days=days)
