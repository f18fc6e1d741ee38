"""Per-product rates: what a sale's items earn, and what share of it a refund takes back.

A sale with items is priced per item: a sku's rate beats its category's, which beats the
sale's own rate (the base rate, a volume tier or the new-customer rate, whichever the
plan gives the sale); items of an excluded sku or category earn nothing, and so does the
order's non-commissionable part (shipping, taxes). Items sharing a percent are summed and
their commission is rounded once, half up, whatever gives them that percent (skus,
categories, the sale's own rate); a fixed sale rate is paid once when any item falls to
it. A sale without items is paid on its amount less its non-commissionable part.

A refund that names items takes back, per item, the item's share of the line's exact
(unrounded) commission in proportion to what it refunds of that item (capped at the item),
when the items it names make up its amount (``refund_items_problem``, the rule the orders
API refuses a refund by). Any other refund takes back its share of the order amount, as
before items existed: one naming no items, a sku the order does not have, or items that
do not make up its amount (produced straight onto the topic, around the API): a 1-cent
refund naming a whole item by quantity takes back a cent's share, not the item's
commission, and a whole-order refund naming one item takes back the whole line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from afflux.shared.core.money import divide_half_up, percent_of
from afflux.shared.core.terms import ProductRates, Rate

# (sku, category or None, quantity, unit price in minor units): an order item as a fact.
ItemRow = tuple[str, str | None, int, int]
# (sku, quantity or None, amount_minor or None): an item a refund names.
RefundItemRow = tuple[str, int | None, int | None]
EXCLUDED = "excluded"


@dataclass(frozen=True, slots=True)
class RatedPart:
    """Items paid at one rate: why that rate, their summed amount, what they earn."""

    why: str
    rate: Rate
    base_minor: int
    commission_minor: int


@dataclass(frozen=True, slots=True)
class SalePricing:
    gross: int
    parts: tuple[RatedPart, ...]
    excluded_minor: int
    non_commissionable_minor: int
    # sku -> the item's exact commission per minor unit of its amount (refunds by item).
    per_unit: tuple[tuple[str, Fraction], ...]

    def rule(self) -> str:
        paid = ", ".join(f"{describe(p.rate)} of {p.base_minor} ({p.why})" for p in self.parts)
        notes = []
        if self.excluded_minor:
            notes.append(f"excluded {self.excluded_minor}")
        if self.non_commissionable_minor:
            notes.append(f"{self.non_commissionable_minor} non-commissionable")
        return "sale: " + (paid or "no commissionable amount") + "".join(f"; {n}" for n in notes)


def describe(rate: Rate) -> str:
    return f"{rate.percent}%" if rate.percent is not None else f"fixed {rate.fixed_minor}"


def item_rate(products: ProductRates | None, sku: str, category: str | None) -> tuple[str, str]:
    """(why, percent) for an item with its own rate; (EXCLUDED, "") for an excluded one;
    ("", "") for one paid at the sale's rate."""
    if products is None:
        return "", ""
    if sku in products.excluded_skus or (category and category in products.excluded_categories):
        return EXCLUDED, ""
    if sku in products.skus:
        return f"sku {sku}", str(products.skus[sku])
    if category and category in products.categories:
        return f"category {category}", str(products.categories[category])
    return "", ""


def mixed_category(items: Sequence[tuple[str, str | None]]) -> tuple[int, str] | None:
    """The first item (its index) listing a sku an earlier item lists under another
    category (none counts as one), and why; None when each sku has one category. Rates
    and refunds pool an order's rows by sku: a sku listed as shoes and as a gift card
    would have a refund of the gift card take back commission at a blended rate. The
    same sku on several rows of one category is fine."""
    first: dict[str, tuple[int, str | None]] = {}
    for index, (sku, category) in enumerate(items):
        at, kept = first.setdefault(sku, (index, category))
        if kept != category:
            return index, (
                f"sku {sku!r} is {_category(kept)} in items.{at}: an order lists each sku under"
                " one category (per-product rates and refunds go by sku)"
            )
    return None


def _category(category: str | None) -> str:
    return "without a category" if category is None else f"of category {category!r}"


# The orders API's bounds on an order's text and items (``afflux.orders.rules``).
MAX_ORDER_ITEMS = 500
_ORDER_TEXT_BOUNDS = (("action", 1, 64), ("coupon_code", 1, 64), ("customer_id", 0, 200))


def order_bounds_problem(
    action: str | None, coupon_code: str | None, customer_id: str | None, items: int
) -> str:
    """Why an order is past the orders API's bounds ('' when it is not): written straight
    to the topic, a 1 MB ``customer_id`` made a conversion (which copies it) over every
    reader's 1 MiB record limit, so the order was attributed and its commission lost. A
    rule of the worker, not of the event: events an earlier version took still decode."""
    for name, value, low, high in (
        (name, value, low, high)
        for (name, low, high), value in zip(
            _ORDER_TEXT_BOUNDS, (action, coupon_code, customer_id), strict=True
        )
    ):
        if value is not None and not low <= len(value) <= high:
            return f"{name} of {len(value)} characters: from {low} to {high} are taken"
    if items > MAX_ORDER_ITEMS:
        return f"{items} items: at most {MAX_ORDER_ITEMS} are taken"
    return ""


def items_problem(
    amount_minor: int, items: Sequence[ItemRow], non_commissionable_minor: int
) -> str:
    """Why an order's items cannot be priced ('' when they can): its items and its
    non-commissionable part must make up its amount exactly (without items, the part must
    be at most the amount), as the orders service checks at entry. An order on the topic
    that breaks this (produced around the service) would otherwise be paid on items worth
    more than the order."""
    if not items:
        # Without items the non-commissionable part must still fit in the amount, as the
        # orders service checks: an order on the topic whose part exceeds it was taken.
        if 0 <= non_commissionable_minor <= amount_minor:
            return ""
        return (
            f"non_commissionable_minor {non_commissionable_minor} is not from 0 to"
            f" amount_minor {amount_minor}"
        )
    total = sum(quantity * unit for _, _, quantity, unit in items)
    if total + non_commissionable_minor == amount_minor:
        return ""
    return (
        f"items sum to {total} and non_commissionable_minor is {non_commissionable_minor},"
        f" but amount_minor is {amount_minor}"
    )


def price_sale(
    products: ProductRates | None,
    sale_rate: Rate,
    sale_why: str,
    amount_minor: int,
    items: Sequence[ItemRow],
    non_commissionable_minor: int = 0,
) -> SalePricing:
    """What a sale earns: per item when it has items, else on its commissionable amount."""
    if not items:
        base = max(0, amount_minor - non_commissionable_minor)
        if non_commissionable_minor and base == 0:
            # Shipping alone earns nothing, at a fixed rate too, as when it is sent as an
            # excluded item line.
            return SalePricing(0, (), 0, non_commissionable_minor, ())
        # A fixed rate is paid per sale whatever its amount, as before items existed.
        gross = percent_of(base, sale_rate.percent) if sale_rate.percent is not None else 0
        gross = gross or (sale_rate.fixed_minor or 0)
        part = RatedPart(sale_why, sale_rate, base, gross)
        return SalePricing(gross, (part,), 0, non_commissionable_minor, ())
    # Items paid at the same percent are one part, rounded once: the sale's own rate
    # too when it is that percent (a sku at 5 % beside the base rate's 5 %).
    summed: dict[Decimal, tuple[list[str], int]] = {}  # percent -> (whys, summed amount)
    default_base = excluded = 0
    for sku, category, quantity, unit in items:
        why, percent = item_rate(products, sku, category)
        amount = quantity * unit
        if why == EXCLUDED:
            excluded += amount
        elif why:
            _add(summed, Decimal(percent), why, amount)
        else:
            default_base += amount
    fixed_part = None
    if default_base and sale_rate.percent is not None:
        _add(summed, sale_rate.percent, sale_why, default_base)
    elif default_base:
        fixed_part = RatedPart(sale_why, sale_rate, default_base, _apply(sale_rate, default_base))
    groups = sorted(summed.items(), key=lambda g: (sale_why in g[1][0], sorted(g[1][0])))
    parts = [
        RatedPart(
            ", ".join(sorted(whys, key=lambda w: (w == sale_why, w))),
            Rate(percent=percent),
            base,
            percent_of(base, percent),
        )
        for percent, (whys, base) in groups
    ]
    if fixed_part is not None:
        parts.append(fixed_part)
    per_unit = _per_unit(products, sale_rate, default_base, items)
    gross = sum(p.commission_minor for p in parts)
    return SalePricing(gross, tuple(parts), excluded, non_commissionable_minor, per_unit)


def _add(
    summed: dict[Decimal, tuple[list[str], int]], percent: Decimal, why: str, amount: int
) -> None:
    whys, base = summed.get(percent, ([], 0))
    if why not in whys:
        whys.append(why)
    summed[percent] = (whys, base + amount)


def _apply(rate: Rate, base: int) -> int:
    if rate.percent is not None:
        return percent_of(base, rate.percent)
    return (rate.fixed_minor or 0) if base > 0 else 0


def _per_unit(
    products: ProductRates | None, sale_rate: Rate, default_base: int, items: Sequence[ItemRow]
) -> tuple[tuple[str, Fraction], ...]:
    """sku -> exact commission per minor unit of that sku's amount (0 for excluded)."""
    earned: dict[str, Fraction] = {}
    amounts: dict[str, int] = {}
    for sku, category, quantity, unit in items:
        why, percent = item_rate(products, sku, category)
        amount = quantity * unit
        if why == EXCLUDED:
            share = Fraction(0)
        elif why:
            share = Fraction(Decimal(percent)) * amount / 100
        elif sale_rate.percent is not None:
            share = Fraction(sale_rate.percent) * amount / 100
        elif default_base:  # a fixed sale rate, spread over the items it is paid on
            share = Fraction((sale_rate.fixed_minor or 0) * amount, default_base)
        else:  # only free items at a fixed sale rate: it is not paid, they earn nothing
            share = Fraction(0)
        earned[sku] = earned.get(sku, Fraction(0)) + share
        amounts[sku] = amounts.get(sku, 0) + amount
    return tuple(
        (sku, earned[sku] / amounts[sku] if amounts[sku] else Fraction(0)) for sku in earned
    )


def _item_totals(items: Sequence[ItemRow]) -> tuple[dict[str, int], dict[str, int]]:
    """sku -> the order's amount of it, sku -> its quantity (a sku may be on several rows)."""
    amount_of: dict[str, int] = {}
    quantity_of: dict[str, int] = {}
    for sku, _, quantity, unit in items:
        amount_of[sku] = amount_of.get(sku, 0) + quantity * unit
        quantity_of[sku] = quantity_of.get(sku, 0) + quantity
    return amount_of, quantity_of


def refund_items_problem(
    amount_minor: int,
    items: Sequence[ItemRow],
    non_commissionable_minor: int,
    named: Sequence[RefundItemRow],
) -> str:
    """Why the items a refund names do not make up what it refunds ('' when they do, or
    when it names none or a sku the order does not have: such a refund is priced on its
    amount anyway).

    A refund naming items names what it refunds: its ``amount_minor`` is the items named
    (a quantity standing for that share of the item's amount, an amount capped at the
    item) plus, at most, the order's part that is no item (shipping, taxes). The orders
    API refuses a refund that breaks this (422 naming ``items``); the ledger prices one
    that reached the topic around the API on its amount (``refund_shares``)."""
    amount_of, quantity_of = _item_totals(items)
    if not named or not all(row[0] in amount_of for row in named):
        return ""
    # A quantity stands for its share of the item rounded down, as ``item_refund_parts``
    # takes it: counted exactly, a sku on two rows at two prices (1000 and 1) could not be
    # refunded a unit at a time (half of 1001 is more than 500 and less than 501).
    total = Fraction(0)
    for sku, units, refund_amount in named:
        whole = amount_of[sku]
        if units is not None:
            total += min(whole, whole * units // quantity_of[sku]) if quantity_of[sku] else 0
        else:
            total += min(whole, refund_amount or 0)
    if total > amount_minor:
        return (
            f"the items name {math.ceil(total)} of the order by their quantities and amounts,"
            f" more than amount_minor {amount_minor}: for a partial refund of an item"
            " name its amount_minor instead of a quantity"
        )
    if amount_minor - total > non_commissionable_minor:
        return (
            f"amount_minor {amount_minor} is more than the items named"
            f" ({math.floor(total)}) and the order's non-commissionable part"
            f" ({non_commissionable_minor}): name every item refunded, or none"
        )
    return ""


@dataclass(frozen=True, slots=True)
class ItemRefundPart:
    """What one refund takes of one of the order's skus, in minor units of the item's
    amount (a quantity's share rounded down, so refunds of every unit one by one still
    fit), beside the whole of that sku in the order."""

    sku: str
    part_minor: int
    whole_minor: int


def item_refund_parts(
    amount_minor: int,
    items: Sequence[ItemRow],
    non_commissionable_minor: int,
    named: Sequence[RefundItemRow],
) -> tuple[ItemRefundPart, ...]:
    """The parts of the order's items a refund takes when it is priced by its items
    (``refund_by_items``), else none: the orders API checks them against earlier refunds,
    since the ledger caps an item's refunds at the item and would take nothing back for
    money refunded of an item already refunded whole."""
    if not refund_by_items(amount_minor, items, non_commissionable_minor, named):
        return ()
    amount_of, quantity_of = _item_totals(items)
    parts: dict[str, int] = {}
    for sku, units, refund_amount in named:
        whole = amount_of[sku]
        if units is not None:
            part = min(whole, whole * units // quantity_of[sku]) if quantity_of[sku] else 0
        else:
            part = min(whole, refund_amount or 0)
        parts[sku] = min(whole, parts.get(sku, 0) + part)
    return tuple(ItemRefundPart(sku, part, amount_of[sku]) for sku, part in parts.items())


def refund_by_items(
    amount_minor: int,
    items: Sequence[ItemRow],
    non_commissionable_minor: int,
    named: Sequence[RefundItemRow],
) -> bool:
    """Whether a refund is priced per item it names (else on its amount): it names items,
    all of them the order's, and they make up its amount (``refund_items_problem``)."""
    skus = {row[0] for row in items}
    return (
        amount_minor > 0
        and bool(named)
        and all(row[0] in skus for row in named)
        and not refund_items_problem(amount_minor, items, non_commissionable_minor, named)
    )


def refund_shares(
    whole_minor: int,
    items: Sequence[ItemRow],
    per_unit: Sequence[tuple[str, Fraction]],
    refunds: Sequence[tuple[int, Sequence[RefundItemRow]]],
    non_commissionable_minor: int = 0,
) -> list[Fraction]:
    """Each refund's share of the line's commission, for refunds (amount applied, items
    named) in event-time order: a refund priced by its items (``refund_by_items``) takes
    each item's commission in proportion to what it refunds of it (an item's refunds
    capped at the item); any other takes ``amount / whole``. The refund that brings the
    refunds to the whole order takes at least all the commission left (``completing``).
    Shares are not capped here. ``non_commissionable_minor``: the order's part that is no
    item (what a refund may refund beside the items it names)."""
    amount_of, quantity_of = _item_totals(items)
    rate_of = dict(per_unit)
    exact = sum((rate_of.get(sku, Fraction(0)) * a for sku, a in amount_of.items()), Fraction(0))
    refunded: dict[str, Fraction] = {}
    out: list[Fraction] = []
    refunded_minor = 0
    for amount, named in refunds:
        refunded_minor += max(0, amount)
        if amount <= 0:
            out.append(Fraction(0))
            continue
        if exact > 0 and refund_by_items(amount, items, non_commissionable_minor, named):
            taken = Fraction(0)
            for sku, units, refund_amount in named:
                whole_item = amount_of[sku]
                if units is not None:
                    part = Fraction(whole_item * units, quantity_of[sku])
                else:
                    part = Fraction(refund_amount or 0)
                before = refunded.get(sku, Fraction(0))
                now = min(Fraction(whole_item), before + part)
                refunded[sku] = now
                taken += rate_of[sku] * (now - before)
            share = taken / exact
        else:
            share = Fraction(amount, whole_minor) if whole_minor > 0 else Fraction(0)
        out.append(completing(share, out, refunded_minor, whole_minor))
    return out


def completing(share: Fraction, earlier: Sequence[Fraction], refunded: int, whole: int) -> Fraction:
    """A refund's share, or, when it brings the order's refunds (``refunded``, capped at
    the order, this one included) to the whole order, at least what the ``earlier``
    shares left: a fully refunded order pays nothing, whichever of its refunds named
    items. Without it, a refund naming no items (its share of the amount) and one naming
    a low-rate item (that item's share of the commission) could refund the whole order
    and leave it commission."""
    if whole > 0 and refunded >= whole:
        return max(share, 1 - sum(earlier, Fraction(0)))
    return share


def round_half_up(value: Fraction) -> int:
    return divide_half_up(value.numerator, value.denominator)
