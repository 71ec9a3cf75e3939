"""Read a config file's YAML defensively, and remember the line of every key.

A config file may come from anywhere (a forum post, a backup): reading it must cost
bounded time and memory. Nesting is recursion in the YAML composer (RecursionError past
~1000 levels), and anchors/aliases can expand 350 bytes into billions of nodes ("billion
laughs"), which any later walk over the data (or repr() in an error) then pays for.
"""

from __future__ import annotations

from typing import Any

import yaml

from gateway.config_model import ConfigError

MAX_CONFIG_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 32
MAX_YAML_EXPANDED = 1_000_000  # nodes and scalar characters, counting every alias in full

# A key path as a tuple: ("cameras", 0, "demo", "width").
KeyPath = tuple[str | int, ...]


class _BoundedYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and aliases that expand too far."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._expanded: dict[int, int] = {}  # id(node) -> its size with aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            alias = super().compose_node(parent, index)
            if alias is None or id(alias) not in self._expanded:  # an ancestor, unfinished
                raise self._refuse("an alias refers to a node that contains it")
            return alias
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise self._refuse(f"nested deeper than {MAX_YAML_DEPTH} levels")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        assert node is not None  # only an empty stream composes to None, not a node
        self._expanded[id(node)] = self._size(node)
        return node

    def _size(self, node: yaml.Node) -> int:
        if isinstance(node, yaml.ScalarNode):
            return 1 + len(node.value)
        size = 1 + sum(self._expanded[id(child)] for child in _children(node))
        if size > MAX_YAML_EXPANDED:
            raise self._refuse(
                f"anchors and aliases expand to more than {MAX_YAML_EXPANDED:,} nodes and "
                "characters (a 'billion laughs' file?)"
            )
        return size

    def _refuse(self, why: str) -> ConfigError:
        mark = self.peek_event().start_mark if self.check_event() else None
        return ConfigError(f"{why}" + (f" (line {mark.line + 1})" if mark else ""))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value)


def load_yaml(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """The document's data, and the line (1-based) where each key path starts."""
    loader = _BoundedYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[KeyPath, int] = {}
        _record_lines(loader, node, (), lines, set())
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _record_lines(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    seen: set[int],
) -> None:
    # A node reached again through an alias is not walked again: the walk stays as small
    # as the file, and an error inside it points at the alias's line (its nearest parent).
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # `<<: *anchor` merges, as the constructor will
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[(*path, key.value)] = key.start_mark.line + 1
                _record_lines(loader, value, (*path, key.value), lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _record_lines(loader, item, (*path, index), lines, seen)


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its nearest parent the file has."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
