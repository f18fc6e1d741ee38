"""What an accepted order pays and to whom: the fields an order id sent again may not
change. A copy that changes one is a conflict, not a duplicate: the orders service
answers 409 naming the field (its claim keeps these values), and the attribution worker
dead-letters such a copy written straight to the topic (``conflicting_duplicate``), the
first copy's decision standing. Both read this one list, so neither lets through a change
the other refuses.
"""

from __future__ import annotations

# Append only: the orders service's claims keep the values in this order for
# AFFLUX_ORDERS_DEDUPE_TTL_DAYS.
ORDER_TERMS_FIELDS = (
    "kind",
    "action",
    "amount_minor",
    "non_commissionable_minor",
    "items",
    "new_customer",
    "visitor_id",
    "click_id",
    "coupon_code",
)
