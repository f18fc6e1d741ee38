"""Agency override lines of a campaign-period (afflux.shared.core.overrides).

One override line per creator line and agency level, owned by the agency: it mirrors
the creator line's components (``overrides.mirror``) and is then capped per agency by
the terms' ``cap_minor`` (component ``cap:override``) in (time, line id) order. The
step calls ``follow`` with every line whose pay may have moved; the override lines
whose target moved come back to be posted like any line. Override lines are never
in a creator's cap or the campaign budget: the brand pays them on top.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal

from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.fill import CapScope
from afflux.shared.core.journal.records import LineRecord
from afflux.shared.core.journal.review_lines import is_declined
from afflux.shared.core.overrides import (
    OVERRIDE_CAP,
    OVERRIDE_LINE,
    AgencyOverrides,
    MirroredPart,
    mirror,
)
from afflux.shared.core.periods import period_bounds
from afflux.shared.core.terms import TermsVersion, terms_in_force

# The rule of an override line whose creator line was declined in review: the decline's
# own rule (who, the signals, the reason) follows.
REVERSED_BY_DECLINE = "override reversed: "


def override_line_id(source_line_id: str, level: int) -> str:
    return derived_id("line", OVERRIDE_LINE, source_line_id, str(level))


class OverrideBook:
    """The period's override cap scopes (one per agency), kept like the creator caps."""

    def __init__(self, overrides: AgencyOverrides | None) -> None:
        self.overrides = overrides
        self.scopes: dict[str, CapScope] = {}

    def load(self, records: Iterable[LineRecord]) -> None:
        cap = None if self.overrides is None else self.overrides.cap_minor
        if cap is None:
            return
        entries: dict[str, list[tuple[tuple[int, str], int]]] = {}
        for record in records:
            if record.kind == OVERRIDE_LINE and record.scope_key is not None:
                entries.setdefault(record.affiliate_id, []).append((record.scope_key, record.net))
        self.scopes = {a: CapScope.build(cap, e) for a, e in entries.items()}

    def follow(
        self,
        lines: dict[str, LineRecord],
        changed: Iterable[str],
        components: Callable[[LineRecord], Mapping[tuple[str, int], int]],
        touch: Callable[[LineRecord], None],
    ) -> set[str]:
        """Bring the override lines of the ``changed`` lines up to date; the override
        lines whose pay may have moved (theirs, or others' of the same agency's cap)."""
        if self.overrides is None:
            return set()
        moved: dict[str, set[str]] = {}  # agency -> its override lines that changed
        for line_id in sorted(changed):
            source = lines[line_id]
            if source.kind == OVERRIDE_LINE:
                continue
            chain = self.overrides.chain(source.affiliate_id)
            if not chain:
                continue
            parts_of = components(source)
            for level, agency, share in chain:
                override_id = override_line_id(line_id, level)
                parts = mirror(parts_of, share)
                record = lines.get(override_id)
                if record is None:
                    if not parts:
                        continue
                    record = lines[override_id] = LineRecord(override_id, agency, OVERRIDE_LINE)
                touch(record)
                _mirror_into(record, source, level, share, parts)
                moved.setdefault(record.affiliate_id, set()).add(override_id)
        return self._capped(lines, moved)

    def _capped(self, lines: dict[str, LineRecord], moved: dict[str, set[str]]) -> set[str]:
        cap = None if self.overrides is None else self.overrides.cap_minor
        out: set[str] = set()
        for agency, line_ids in moved.items():
            if cap is None:
                for line_id in line_ids:
                    record = lines[line_id]
                    record.creator_paid = record.paid = record.net
                out |= line_ids
                continue
            scope = self.scopes.get(agency)
            if scope is None:
                scope = self.scopes[agency] = CapScope(cap)
            scope.touched.clear()
            for line_id in sorted(line_ids):
                record = lines[line_id]
                record.scope_key = (record.time, line_id) if record.net > 0 else None
                scope.set(line_id, record.scope_key, record.net)
            for line_id in scope.touched | line_ids:
                record = lines[line_id]
                record.creator_paid = record.paid = scope.paid(line_id)
                out.add(line_id)
        return out


def _mirror_into(
    record: LineRecord,
    source: LineRecord,
    level: int,
    share: Decimal,
    parts: tuple[MirroredPart, ...],
) -> None:
    mirrored = tuple((p.name, p.approve_at, p.amount_minor) for p in parts)
    record.mirrored = mirrored
    record.override = (source.line_id, source.affiliate_id, level, str(share))
    record.time = source.time
    record.approve_at = source.approve_at
    record.order_id = source.order_id
    record.terms_version = source.terms_version
    record.sources = source.sources
    record.gross = record.net = sum(amount for _, _, amount in mirrored)
    what = f"{source.affiliate_id}'s {source.kind or 'conversion'} line"
    if is_declined(source):  # the agency reads why, as the creator does (source.rule)
        record.rule = f"{REVERSED_BY_DECLINE}{what} {source.rule}"
        return
    record.rule = (
        f"override: {share}% of {what} (agency level {level}), paid by the brand on top of"
        " the creator's commission"
    )


def override_components(record: LineRecord) -> dict[tuple[str, int], int]:
    """An override line's targets: its mirrored parts, less its agency's cap cut."""
    out: dict[tuple[str, int], int] = {}
    for name, at, amount in record.mirrored:
        out[(name, at)] = out.get((name, at), 0) + amount
    if record.net - record.paid:
        out[(OVERRIDE_CAP, record.approve_at)] = -(record.net - record.paid)
    return {k: v for k, v in out.items() if v}


def posting_kind(name: str, posted: int, target: int) -> str:
    if name == OVERRIDE_CAP:
        return "cap_cut" if target < posted else "cap_release"
    if name == "accrual":
        return "override" if posted == 0 else "override_correction"
    if name.startswith("clawback"):
        return "override_clawback"
    return "override_reduction"  # a refund or a cap cut of the creator's line, mirrored


def posting_rule(record: LineRecord, name: str, posted: int, target: int) -> str:
    creator = record.override[1] if record.override else "the creator"
    if name == OVERRIDE_CAP:
        if target < posted:
            return "cut: the agency's override cap is used up by earlier overrides of the period"
        return "released: override cap room freed"
    if name == "accrual":
        if posted == 0 or record.rule.startswith(REVERSED_BY_DECLINE):
            return record.rule
        return f"{record.rule} (was {posted})"
    what = "clawback" if name.startswith("clawback") else name
    return f"override mirrors {creator}'s {what}: {record.rule}"


def override_agencies(
    versions: Sequence[TermsVersion], period: str, creators: Iterable[str]
) -> set[str]:
    """The agencies that earn overrides on ``creators``' lines of the period (its terms
    are those in force when it opened, as for the period's caps)."""
    if not versions:
        return set()
    overrides = terms_in_force(versions, period_bounds(period)[0]).terms.overrides
    if overrides is None:
        return set()
    return {agency for c in creators for _, agency, _ in overrides.chain(c)}
