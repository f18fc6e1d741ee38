"""YAML from someone the service does not trust (a merchant's what-if draft), read in
time and memory in proportion to its length.

PyYAML's safe loader still lets a document grow while it is read: an alias repeats what
its anchor holds, and a merge key (``<<: [*a, *a, ...]``) copies it again, so a chain
of a few hundred bytes makes millions of entries (seconds of CPU, then all the memory),
and brackets nested two thousand deep end in a ``RecursionError``. Terms need neither:
this loader refuses every anchor and alias, and nesting deeper than ``MAX_DEPTH``, with
a ``yaml.YAMLError`` saying where; and a key given twice in a mapping (``yaml_mappings``).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import Node

from afflux.shared.yaml_mappings import UniqueKeyLoader

MAX_DEPTH = 32  # terms nest a handful of levels


class _BoundedLoader(UniqueKeyLoader):
    depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.YAMLError(
                f"anchors and aliases are not accepted here (line {event.start_mark.line + 1})"
            )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.YAMLError(
                    f"nested deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load(text: str) -> Any:
    """The one document in ``text``, or ``yaml.YAMLError``."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
