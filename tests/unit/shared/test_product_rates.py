"""Per-product rates: which rate an item gets, what a sale with items earns and what a
refund naming items takes back (afflux.shared.core.products)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pytest
from pydantic import ValidationError

from afflux.shared.core.products import (
    ItemRefundPart,
    ItemRow,
    RefundItemRow,
    item_refund_parts,
    price_sale,
    refund_items_problem,
    refund_shares,
)
from afflux.shared.core.terms import CampaignTerms, ProductRates, Rate

pytestmark = pytest.mark.unit

PRODUCTS = ProductRates(
    skus={"shoe-1": Decimal("12.5")},
    categories={"shoes": Decimal("6"), "bags": Decimal("4"), "boots": Decimal("6.0")},
    excluded_skus=("sock-9",),
    excluded_categories=("gift_card", "shipping"),
)
EIGHT = Rate(percent=Decimal("8"))


@dataclass(frozen=True)
class Sale:
    name: str
    items: tuple[ItemRow, ...]
    amount: int
    gross: int
    rule: str
    non_commissionable: int = 0
    rate: Rate = EIGHT


SALES = [
    # No items: the sale's rate on its amount, the rule as before items existed.
    Sale("no items", (), 4999, 400, "sale: 8% of 4999 (base rate)"),
    # No items, shipping named: the rate on the rest.
    Sale(
        "no items, 499 shipping",
        (),
        4999,
        360,
        "sale: 8% of 4500 (base rate); 499 non-commissionable",
        non_commissionable=499,
    ),
    # A sku rate beats its category's.
    Sale(
        "sku beats category",
        (("shoe-1", "shoes", 1, 1000),),
        1000,
        125,
        "sale: 12.5% of 1000 (sku shoe-1)",
    ),
    # A category rate beats the sale's rate.
    Sale(
        "category beats default",
        (("shoe-2", "shoes", 2, 500),),
        1000,
        60,
        "sale: 6% of 1000 (category shoes)",
    ),
    # An item with no rate of its own is paid the sale's rate.
    Sale("default", (("hat", None, 1, 1000),), 1000, 80, "sale: 8% of 1000 (base rate)"),
    # Excluded by category and by sku: nothing.
    Sale(
        "excluded",
        (("card", "gift_card", 1, 5000), ("sock-9", "socks", 2, 250)),
        5500,
        0,
        "sale: no commissionable amount; excluded 5500",
    ),
    # Items sharing a rate are summed and rounded once: 6% of 2 x 4999 = 599.88 -> 600.
    Sale(
        "one rounding per rate",
        (("a", "shoes", 1, 4999), ("b", "shoes", 1, 4999)),
        9998,
        600,
        "sale: 6% of 9998 (category shoes)",
    ),
    # ... whatever gives them that rate: two categories at 6 % and the sale's own 6 %
    # are one part (3 x 6% of 1010 = 60.6 -> 61 each rounded alone, 183; once: 182).
    Sale(
        "one rounding per rate across skus, categories and the sale's rate",
        (("a", "shoes", 1, 1010), ("b", "boots", 1, 1010), ("c", None, 1, 1010)),
        3030,
        182,
        "sale: 6% of 3030 (category boots, category shoes, base rate)",
        rate=Rate(percent=Decimal("6")),
    ),
    # Shipping as a non-commissionable category line beside a shoe.
    Sale(
        "mixed with a shipping line",
        (
            ("shoe-1", "shoes", 1, 2000),
            ("bag-1", "bags", 1, 3000),
            ("hat", None, 1, 1000),
            ("ship", "shipping", 1, 495),
        ),
        6495,
        250 + 120 + 80,
        "sale: 4% of 3000 (category bags), 12.5% of 2000 (sku shoe-1), 8% of 1000"
        " (base rate); excluded 495",
    ),
    # A fixed sale rate is paid once, when any item falls to it.
    Sale(
        "fixed default once",
        (("hat", None, 3, 1000), ("cap", None, 1, 10), ("shoe-1", "shoes", 1, 1000)),
        4010,
        300 + 125,
        "sale: 12.5% of 1000 (sku shoe-1), fixed 300 of 3010 (base rate)",
        rate=Rate(fixed_minor=300),
    ),
    # ... and not when every item has its own rate.
    Sale(
        "fixed default unused",
        (("shoe-1", "shoes", 1, 1000),),
        1000,
        125,
        "sale: 12.5% of 1000 (sku shoe-1)",
        rate=Rate(fixed_minor=300),
    ),
    # A fixed rate without items: once per sale, whatever its amount ...
    Sale(
        "fixed, no items, some shipping",
        (),
        700,
        300,
        "sale: fixed 300 of 100 (base rate); 600 non-commissionable",
        non_commissionable=600,
        rate=Rate(fixed_minor=300),
    ),
    # ... but nothing on shipping alone, as when it is sent as an excluded item line
    # (it earned the fixed 300 sent without items).
    Sale(
        "fixed, no items, shipping alone",
        (),
        700,
        0,
        "sale: no commissionable amount; 700 non-commissionable",
        non_commissionable=700,
        rate=Rate(fixed_minor=300),
    ),
    Sale(
        "fixed, shipping alone as an item line",
        (("ship", "shipping", 1, 700),),
        700,
        0,
        "sale: no commissionable amount; excluded 700",
        rate=Rate(fixed_minor=300),
    ),
]


@pytest.mark.parametrize("case", SALES, ids=lambda c: c.name)
def test_a_sale_with_items_earns_per_item_rate(case: Sale) -> None:
    priced = price_sale(
        PRODUCTS, case.rate, "base rate", case.amount, case.items, case.non_commissionable
    )
    assert priced.gross == case.gross
    assert priced.rule() == case.rule


def test_a_tier_replaces_only_the_default_rate() -> None:
    items: tuple[ItemRow, ...] = (("shoe-1", "shoes", 1, 1000), ("hat", None, 1, 1000))
    tier = Rate(percent=Decimal("10"))
    priced = price_sale(PRODUCTS, tier, "tier from net sale 3", 2000, items)
    assert priced.gross == 125 + 100


ITEMS: tuple[ItemRow, ...] = (
    ("shoe-1", "shoes", 2, 1000),
    ("hat", None, 1, 2000),
    ("card", "gift_card", 1, 1000),
)
# Exact commission: shoe-1 2000 x 12.5% = 250, hat 2000 x 8% = 160, card 0; total 410.
PER_UNIT = price_sale(PRODUCTS, EIGHT, "base rate", 5000, ITEMS).per_unit


@dataclass(frozen=True)
class Refunds:
    name: str
    refunds: tuple[tuple[int, tuple[RefundItemRow, ...]], ...]
    shares: tuple[Fraction, ...]


REFUNDS = [
    # No items named: the refund's share of the order amount.
    Refunds("whole order", ((1000, ()),), (Fraction(1000, 5000),)),
    # One of two shoes: half the shoes' commission.
    Refunds("by quantity", ((1000, (("shoe-1", 1, None),)),), (Fraction(125, 410),)),
    # The gift card earned nothing, so refunding it takes nothing.
    Refunds("an excluded item", ((1000, (("card", 1, None),)),), (Fraction(0),)),
    # By amount: 500 of the hat's 2000.
    Refunds("by amount", ((500, (("hat", None, 500),)),), (Fraction(40, 410),)),
    # An item's refunds are capped at the item: the third shoe takes nothing.
    Refunds(
        "capped per item",
        ((2000, (("shoe-1", 2, None),)), (1000, (("shoe-1", 1, None),))),
        (Fraction(250, 410), Fraction(0)),
    ),
    # A sku the order does not have: pro rata over the whole order instead.
    Refunds("unknown sku", ((1000, (("nope", 1, None),)),), (Fraction(1000, 5000),)),
    # Nothing applied (attribution capped it to 0): nothing taken.
    Refunds("nothing applied", ((0, (("hat", 1, None),)),), (Fraction(0),)),
    # The refund completing the order takes all the commission left: 3000 of 5000, then
    # the hat (its own commission, 160 of 410, is less than the 2/5 left).
    Refunds(
        "the hat completes the order",
        ((3000, ()), (2000, (("hat", 1, None),))),
        (Fraction(3, 5), Fraction(2, 5)),
    ),
    # The hat first, then the rest naming nothing (3/5, less than the 250/410 left).
    Refunds(
        "the rest completes the order",
        ((2000, (("hat", 1, None),)), (3000, ())),
        (Fraction(160, 410), Fraction(250, 410)),
    ),
    # The shoes first (250/410), then the rest: its own 3/5 is more than what is left;
    # shares are not capped here (the line caps their sum).
    Refunds(
        "completing past what is left",
        ((2000, (("shoe-1", 2, None),)), (3000, ())),
        (Fraction(250, 410), Fraction(3, 5)),
    ),
]


@pytest.mark.parametrize("case", REFUNDS, ids=lambda c: c.name)
def test_a_refund_naming_items_takes_their_share(case: Refunds) -> None:
    assert tuple(refund_shares(5000, ITEMS, PER_UNIT, case.refunds)) == case.shares


# The same items with 300 of shipping: an order of 5300, of which 300 is no item.
WHOLE, SHIPPING = 5300, 300
SHIPPED_PER_UNIT = price_sale(PRODUCTS, EIGHT, "base rate", WHOLE, ITEMS, SHIPPING).per_unit


@dataclass(frozen=True)
class Edge:
    name: str
    amount: int
    named: tuple[RefundItemRow, ...]
    by_items: bool  # the API accepts it; else it is a 422, and on the topic pro rata
    share: Fraction


ONE_SHOE: tuple[RefundItemRow, ...] = (("shoe-1", 1, None),)  # 1000 of the order
HAT_500: tuple[RefundItemRow, ...] = (("hat", None, 500),)
EDGES = [
    # By quantity: one shoe stands for 1000, so a refund of 1000 to 1300 (the shoe and at
    # most all the shipping) takes the shoe's commission; any other amount, its own share.
    Edge("one shoe exactly", 1000, ONE_SHOE, True, Fraction(125, 410)),
    Edge("one shoe and all the shipping", 1300, ONE_SHOE, True, Fraction(125, 410)),
    Edge("one shoe, one over the shipping", 1301, ONE_SHOE, False, Fraction(1301, 5300)),
    Edge("one shoe, one under it", 999, ONE_SHOE, False, Fraction(999, 5300)),
    Edge("a cent naming a shoe", 1, ONE_SHOE, False, Fraction(1, 5300)),
    # More units than ordered stand for the item (capped): both shoes, 2000.
    Edge("five of two shoes", 2000, (("shoe-1", 5, None),), True, Fraction(250, 410)),
    # By amount: the same edges around 500 of the hat.
    Edge("500 of the hat exactly", 500, HAT_500, True, Fraction(40, 410)),
    Edge("500 of the hat and all the shipping", 800, HAT_500, True, Fraction(40, 410)),
    Edge("500 of the hat, one over the shipping", 801, HAT_500, False, Fraction(801, 5300)),
    Edge("500 of the hat, one under it", 499, HAT_500, False, Fraction(499, 5300)),
    # The whole order naming only the hat: the whole line, not the hat's 160 of 410.
    Edge("the whole order naming the hat", 5300, (("hat", 1, None),), False, Fraction(1)),
    Edge(
        "the whole order naming every item",
        5300,
        (("shoe-1", 2, None), ("hat", 1, None), ("card", 1, None)),
        True,
        Fraction(1),
    ),
]


@pytest.mark.parametrize("case", EDGES, ids=lambda c: c.name)
def test_items_that_do_not_make_up_the_refund_are_ignored(case: Edge) -> None:
    """A refund is priced per item only when its items make up its amount but for at most
    the order's non-item part, the rule the orders API refuses a refund by; produced onto
    the topic around the API, any other takes its amount's share of the order."""
    problem = refund_items_problem(case.amount, ITEMS, SHIPPING, case.named)
    assert (problem == "") is case.by_items
    shares = refund_shares(WHOLE, ITEMS, SHIPPED_PER_UNIT, [(case.amount, case.named)], SHIPPING)
    assert shares == [case.share]


@pytest.mark.parametrize(
    ("products", "field"),
    [
        ({"skus": {"x": "100.5"}}, "skus"),  # a percent above 100
        ({"categories": {"x": "-1"}}, "categories"),  # a negative percent
        ({"rates": {}}, "rates"),  # an unknown field
    ],
)
def test_bad_product_rates_are_refused_naming_the_field(
    products: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        CampaignTerms.model_validate(
            {
                "campaign_id": "c",
                "merchant_id": "m",
                "currency": "EUR",
                "plan": {"sale": {"rate": {"percent": "5"}, "products": products}},
            }
        )
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("amount", "named", "parts"),
    [
        pytest.param(
            1000, (("shoe-1", 1, None),), (ItemRefundPart("shoe-1", 1000, 2000),), id="one unit"
        ),
        pytest.param(
            700,
            (("shoe-1", None, 500), ("hat", None, 200)),
            (ItemRefundPart("shoe-1", 500, 2000), ItemRefundPart("hat", 200, 2000)),
            id="by amount",
        ),
        pytest.param(
            2300,
            (("shoe-1", 5, None),),
            (ItemRefundPart("shoe-1", 2000, 2000),),
            id="more units than ordered: the whole item",
        ),
        pytest.param(700, (("sock", 1, None),), (), id="a sku the order lacks: pro rata"),
        pytest.param(100, (("shoe-1", 1, None),), (), id="items not making up the amount"),
        pytest.param(0, (("shoe-1", None, 0),), (), id="nothing refunded"),
    ],
)
def test_a_refund_priced_by_its_items_takes_parts_of_them(
    amount: int, named: tuple[RefundItemRow, ...], parts: tuple[ItemRefundPart, ...]
) -> None:
    """What the orders API checks against earlier refunds of each sku: only a refund the
    ledger prices by its items takes parts of them."""
    assert item_refund_parts(amount, ITEMS, SHIPPING, named) == parts


def test_a_units_part_is_rounded_down_so_every_unit_refunded_alone_fits() -> None:
    thirds: tuple[ItemRow, ...] = (("sock", None, 3, 333), ("hat", None, 1, 1))
    one = item_refund_parts(333, thirds, 0, (("sock", 1, None),))
    assert one == (ItemRefundPart("sock", 333, 999),)
    assert 3 * one[0].part_minor <= one[0].whole_minor


def test_a_sku_on_two_rows_at_two_prices_is_refunded_a_unit_at_a_time() -> None:
    """One unit of X is half of 1000 + 1, 500.5: counted exactly, a refund of 500 named
    more than it refunds and one of 501 less, so no amount could refund it by quantity."""
    two_prices: tuple[ItemRow, ...] = (("X", None, 1, 1000), ("X", None, 1, 1))
    one_unit: tuple[RefundItemRow, ...] = (("X", 1, None),)

    assert refund_items_problem(1001, two_prices, 0, (("X", 2, None),)) == ""
    assert refund_items_problem(500, two_prices, 0, one_unit) == ""
    assert "more than the items named (500)" in refund_items_problem(501, two_prices, 0, one_unit)
    assert item_refund_parts(500, two_prices, 0, one_unit) == (ItemRefundPart("X", 500, 1001),)
