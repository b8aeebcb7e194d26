"""Reading the configuration file's YAML strictly: a key named twice in one mapping is an error, not "the last wins".

    >>> read_yaml("kafka: {app_id: a}\\nweb: {port: 1, port: 2}\\n")
    ({'kafka': {'app_id': 'a'}, 'web': {'port': 2}}, ['web.port: duplicate key (lines 2 and 2; the last would win)'])

The data still comes back (the last value wins there, as PyYAML has it), so the schema can report its own errors
in the same pass.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["StrictLoader", "read_yaml"]

_MERGE = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, plus :meth:`duplicate_keys` over the composed document."""

    def duplicate_keys(self, node: Node) -> list[str]:
        """One message per key that repeats within a mapping, with its path and both line numbers."""
        problems: list[tuple[int, str]] = []
        seen: set[int] = set()  # aliases share nodes: each is checked once (and alias bombs stay cheap)
        pending: list[tuple[Node, str]] = [(node, "")]
        while pending:
            current, path = pending.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            children: list[tuple[Node, str]] = []
            if isinstance(current, MappingNode):
                first_line: dict[Any, int] = {}
                for key_node, value_node in current.value:
                    if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                        children.append((value_node, path))
                        continue
                    key = self._key(key_node)
                    line = key_node.start_mark.line + 1
                    child = f"{path}.{key_node.value}" if path else str(key_node.value)
                    if key in first_line:
                        message = f"{child}: duplicate key (lines {first_line[key]} and {line}; the last would win)"
                        problems.append((line, message))
                    else:
                        first_line[key] = line
                    children.append((value_node, child))
            elif isinstance(current, SequenceNode):
                children = [(item, f"{path}[{index}]") for index, item in enumerate(current.value)]
            pending.extend(reversed(children))  # depth first, in document order: an anchor is named where it is
        return [message for _, message in sorted(problems)]

    def _key(self, node: ScalarNode) -> Any:
        """The key as Python will see it (``1`` and ``"1"`` differ, ``yes`` and ``true`` do not)."""
        try:
            key = self.construct_object(node)
            hash(key)
        except (yaml.YAMLError, TypeError):
            return (node.tag, node.value)
        return key


def read_yaml(text: str) -> tuple[Any, list[str]]:
    """The document in ``text`` and the duplicate keys found in it.

    Raises ``yaml.YAMLError`` when the text is not YAML at all.
    """
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        problems = loader.duplicate_keys(node)
        return loader.construct_document(node), problems
    finally:
        loader.dispose()
