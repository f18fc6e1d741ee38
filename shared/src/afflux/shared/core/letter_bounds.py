"""How much of a refused record a dead letter carries.

A dead letter repeats the refused record's key and value so an operator can see
what came in. Unbounded, that copy could not be sent: a 100 KB key of control
bytes becomes 600 KB of JSON escapes, repeated as the letter's own key, and a
letter over the producer's request limit is refused by the client. A consumer
that waits for its letter to be sent then stops on that one record for good.
So each text is cut by its *encoded* size (JSON escapes included), and a cut
text ends with a marker naming the original's size and digest, enough to find
the record on its source topic (the letter also names topic, partition, offset).

The budgets keep a whole letter, its record key included, well under the
smallest producer limit afflux runs with (1 MiB).
"""

from __future__ import annotations

import hashlib
import json

KEY_BUDGET_BYTES = 1024
REASON_BUDGET_BYTES = 16 * 1024
VALUE_BUDGET_BYTES = 512 * 1024
# The widest a character gets in JSON: a control character becomes ``\\u00XX``.
_WIDEST_ESCAPE = 6


def encoded_size(text: str) -> int:
    """Bytes ``text`` takes inside a JSON string (UTF-8, control characters escaped)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


def bounded_text(text: str, budget: int) -> str:
    """``text`` when it fits ``budget`` encoded bytes; else its longest prefix that fits
    together with a marker naming the original's size and SHA-256 digest."""
    if len(text) * _WIDEST_ESCAPE <= budget or encoded_size(text) <= budget:
        return text
    whole = text.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(whole).hexdigest()[:16]
    marker = f" …[cut: {len(whole)} bytes, sha256 {digest}]"
    room = budget - encoded_size(marker)
    return _longest_prefix(text, room) + marker


def _longest_prefix(text: str, budget: int) -> str:
    """The longest prefix of ``text`` whose encoded size is at most ``budget``."""
    low, high = 0, min(len(text), max(budget, 0))  # a character takes at least one byte
    while low < high:
        middle = (low + high + 1) // 2
        if encoded_size(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return text[:low]
