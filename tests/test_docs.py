"""The documentation keeps up with the code: every configuration key is in docs/configuration.md, and every
relative link in README.md and docs/*.md leads to a file (and heading) that exists.

Keys are written as users write them, in one notation (docs/configuration.md, "How keys are written"):

- ``section.key`` for a key of a mapping (``storage.drain_timeout``, ``storage.retention.body_days``);
- ``section[].key`` for a key of each entry of a list (``sources[].url``, ``alerting.routes[].match``);
- a key that only some ``type`` of source (or ``kind`` of rule) has is documented on a line that names those
  types in backticks (``| `sources[].url` | `rss`, `jsonfeed`, `http_json` | ...``).
"""

from __future__ import annotations

import re
import types
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from stackwatch.settings import Settings

REPO = Path(__file__).resolve().parent.parent
CONFIGURATION = REPO / "docs" / "configuration.md"
DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])


# -- the keys of the settings model ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key, and the variants (source types, rule kinds) that have it when not all of them do."""

    path: str
    variants: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Nested:
    """What a field's annotation holds: section models, whether as list entries, and a union's discriminator."""

    models: tuple[type[BaseModel], ...] = ()
    listed: bool = False
    discriminator: str | None = None


def nested(annotation: Any, listed: bool = False, discriminator: str | None = None) -> Nested:
    """The section models inside ``annotation`` (through Annotated, Optional, unions, lists and tuples)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        for item in metadata:
            if isinstance(item, FieldInfo) and isinstance(item.discriminator, str):
                discriminator = item.discriminator
        return nested(inner, listed, discriminator)
    if origin in (Union, types.UnionType):
        parts = [nested(arg, listed, discriminator) for arg in get_args(annotation)]
        models = tuple(model for part in parts for model in part.models)
        return Nested(models, any(part.listed for part in parts if part.models), discriminator)
    if origin in (list, tuple, set, frozenset):
        return nested(get_args(annotation)[0], True, discriminator)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Nested((annotation,), listed, discriminator)
    return Nested(listed=listed)


def variant_of(model: type[BaseModel], discriminator: str) -> str:
    """The member's tag: ``rss`` for ``type: Literal["rss"]``."""
    annotation = model.model_fields[discriminator].annotation
    assert get_origin(annotation) is Literal, f"{model.__name__}.{discriminator} is not a Literal"
    (value,) = get_args(annotation)
    return str(value)


def settings_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[Key]:
    """Every key a configuration file may hold, depth first, in the notation above."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        inside = nested(info.annotation)
        yield Key(path)
        if not inside.models:
            continue
        child = f"{path}[]." if inside.listed else f"{path}."
        if inside.discriminator is None or len(inside.models) == 1:
            for member in inside.models:
                yield from settings_keys(member, child)
            continue
        having: dict[str, list[str]] = {}
        for member in inside.models:
            variant = variant_of(member, inside.discriminator)
            for key in settings_keys(member, child):
                having.setdefault(key.path, []).append(variant)
        for key_path, variants in having.items():
            everywhere = len(variants) == len(inside.models)
            yield Key(key_path, () if everywhere else tuple(variants))


KEYS = list(dict.fromkeys(settings_keys()))
KEY_SHAPE = re.compile(r"^[a-z_]+(\[\])?(\.[a-z_]+(\[\])?)*$")


def test_the_walk_sees_nested_sections_list_entries_and_every_member_of_a_union() -> None:
    paths = {key.path for key in KEYS}
    assert {"storage.drain_timeout", "storage.retention.body_days", "web.allowed_hosts"} <= paths
    assert {"sources[].full_text.max_bytes", "alerting.routes[].match", "indicators.composites[].weights"} <= paths
    assert Key("sources[].url", ("rss", "jsonfeed", "http_json")) in KEYS
    assert Key("sources[].name") in KEYS  # every type has it: no types to name
    assert Key("rules[].for") in KEYS  # the alias users write, not the Python name
    assert Key("rules[].days", ("first_seen", "story", "watch")) in KEYS
    assert all(KEY_SHAPE.match(key.path) for key in KEYS)


@pytest.fixture(scope="module")
def configuration() -> str:
    return CONFIGURATION.read_text(encoding="utf-8")


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.path)
def test_every_settings_key_is_documented(key: Key, configuration: str) -> None:
    assert f"`{key.path}`" in configuration, f"docs/configuration.md does not document `{key.path}`"


@pytest.mark.parametrize("key", [key for key in KEYS if key.variants], ids=lambda key: key.path)
def test_a_key_of_some_source_types_or_rule_kinds_says_which(key: Key, configuration: str) -> None:
    lines = [line for line in configuration.splitlines() if f"`{key.path}`" in line]
    named = {variant for variant in key.variants if any(f"`{variant}`" in line for line in lines)}
    missing = sorted(set(key.variants) - named)
    assert not missing, f"docs/configuration.md: no line with `{key.path}` names {', '.join(missing)}"


def test_every_key_in_the_reference_tables_exists(configuration: str) -> None:
    """The reverse: a table row about a key that no longer exists (renamed, removed) fails too."""
    known = {key.path for key in KEYS}
    rows = re.findall(r"^\|\s*`([^`]+)`", configuration, re.MULTILINE)
    stale = sorted({cell for cell in rows if KEY_SHAPE.match(cell) and ("." in cell or "[]" in cell)} - known)
    assert not stale, f"docs/configuration.md documents keys the settings do not have: {', '.join(stale)}"


# -- links ---------------------------------------------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1", re.DOTALL)
INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where brackets and parentheses are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (``-`` and ``_`` kept), spaces to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = anchor(heading)
        unique, number = slug, 0
        while unique in found:
            number += 1
            unique = f"{slug}-{number}"
        found.add(unique)
    return found


def relative_links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [target for target in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)]


def test_the_link_finder_skips_code_and_absolute_links() -> None:
    text = "[a](docs/a.md) `[b](b.md)` [c](https://x.example/c)\n```\n[d](d.md)\n```\n[e]: docs/e.md#top\n"
    assert INLINE_LINK.findall(prose(text)) == ["docs/a.md", "https://x.example/c"]
    assert REFERENCE_LINK.findall(prose(text)) == ["docs/e.md#top"]
    assert anchor("Roles and scale-out") == "roles-and-scale-out"
    assert anchor("`sources[]`: where articles come from") == "sources-where-articles-come-from"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(document: Path) -> None:
    broken = []
    for link in relative_links(document):
        target, _, fragment = link.partition("#")
        file = (document.parent / target).resolve() if target else document
        if not file.exists():
            broken.append(f"{link} (no file {file.relative_to(REPO) if file.is_relative_to(REPO) else file})")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{link} (no heading #{fragment} in {file.name})")
    assert not broken, f"{document.relative_to(REPO)}: broken links: {'; '.join(broken)}"
