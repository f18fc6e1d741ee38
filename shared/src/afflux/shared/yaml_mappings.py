"""YAML whose mappings name each key once.

PyYAML keeps the last value of a key given twice, without a word: a campaigns file
listing a creator under ``agencies`` twice published terms in which the first agency
earned nothing, and the same mistake in a JSON body is a 400 (``duplicate_keys``).
Every YAML afflux reads (campaign files, merchant secrets, what-if drafts) goes through
``UniqueKeyLoader``, which refuses it naming the key and its line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode


class UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a merge key's entries may be overridden, as YAML says
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader refuses it below
                break
            if duplicate:
                raise ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (line {key_node.start_mark.line + 1});"
                    " give each key once",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(text: str, loader: type[UniqueKeyLoader] = UniqueKeyLoader) -> Any:
    """The one document in ``text``, or ``yaml.YAMLError``."""
    reader = loader(text)
    try:
        return reader.get_single_data()
    finally:
        reader.dispose()
