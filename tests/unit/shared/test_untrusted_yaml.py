"""A draft's YAML is read in time and memory in proportion to its length: no anchor or
alias (whose merges made a 470-byte draft take seconds and 187 MB), no nesting past
``MAX_DEPTH`` (2,000 brackets ended in a RecursionError, a 500)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from afflux.payouts.portal.whatif_page import current_yaml
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.io.untrusted_yaml import MAX_DEPTH, load

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).parents[3] / "examples" / "campaigns.yaml"


def merge_chain(levels: int) -> str:
    """Each level merges the one before ten times: 10^levels entries once read."""
    lines = ["l0: &l0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    for n in range(1, levels + 1):
        lines.append(f"l{n}: &l{n} {{<<: [{', '.join([f'*l{n - 1}'] * 10)}]}}")
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (merge_chain(7), "anchors and aliases are not accepted here (line 1)"),
        ("a: &x 1\nb: *x\n", "anchors and aliases are not accepted here (line 1)"),
        ("a: 1\nb: *x\n", "anchors and aliases are not accepted here (line 2)"),
        ("[" * 2_000 + "]" * 2_000, f"nested deeper than {MAX_DEPTH} levels"),
        ("a:\n" + "".join(f"{'  ' * n}- \n" for n in range(1, 40)), "nested deeper than"),
    ],
    ids=["merge chain", "anchor", "alias", "brackets", "block nesting"],
)
def test_a_draft_that_would_grow_or_nest_without_bound_is_refused_at_once(
    text: str, reason: str
) -> None:
    started = time.process_time()
    with pytest.raises(yaml.YAMLError, match=re.escape(reason)):
        load(text)
    assert time.process_time() - started < 1.0


def test_every_example_campaigns_terms_read_as_the_safe_loader_reads_them() -> None:
    for entry in load_campaign_file(EXAMPLES).campaigns:
        text = current_yaml(entry.terms)
        assert load(text) == yaml.safe_load(text)


def test_nesting_up_to_the_bound_and_a_merge_without_alias_are_read() -> None:
    assert load("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    assert load("<<: {a: 1}\nb: 2\n") == {"a": 1, "b": 2}


def test_a_key_given_twice_in_a_draft_is_refused_naming_its_line() -> None:
    with pytest.raises(yaml.YAMLError, match=r"found the key 'a' twice \(line 3\)"):
        load("a: 1\nb: 2\na: 3\n")


def test_a_merge_key_may_still_be_overridden() -> None:
    """Not refused by the duplicate check (the anchor it needs is, by this loader)."""
    with pytest.raises(yaml.YAMLError, match="anchors and aliases"):
        load("base: &b {x: 1}\nthis: {<<: *b, x: 2}\n")
