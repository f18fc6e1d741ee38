"""Money in integer minor units with an ISO 4217 currency; Decimal only for rates."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# Minor-unit exponents for the currencies we accept. A campaign has one currency,
# so an unknown code is a configuration error caught when the terms are loaded.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "BRL": 2,
    "MXN": 2,
    "INR": 2,
    "CNY": 2,
    "SGD": 2,
    "HKD": 2,
    "ZAR": 2,
    "TRY": 2,
    "JPY": 0,
    "KRW": 0,
    "HUF": 2,
    "ILS": 2,
    "AED": 2,
    "KWD": 3,
    "BHD": 3,
}


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


def check_currency(code: str) -> str:
    """Return ``code`` if it is a supported ISO 4217 code, else raise ValueError."""
    if code not in CURRENCY_EXPONENTS:
        raise ValueError(f"unsupported currency {code!r}: use an ISO 4217 code such as EUR")
    return code


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units (cents) of one currency."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        check_currency(self.currency)

    def __add__(self, other: Money) -> Money:
        self._check_same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check_same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def _check_same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be combined")

    def format(self) -> str:
        exponent = CURRENCY_EXPONENTS[self.currency]
        value = Decimal(self.amount_minor).scaleb(-exponent)
        return f"{value:.{exponent}f} {self.currency}"


def round_half_up(value: Decimal) -> int:
    """Round a Decimal amount of minor units to an integer, halves away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent_of(amount_minor: int, percent: Decimal) -> int:
    """``percent`` % of ``amount_minor``, rounded once, half up."""
    return round_half_up(Decimal(amount_minor) * percent / Decimal(100))


def pro_rata(amount_minor: int, part_minor: int, whole_minor: int) -> int:
    """``amount_minor`` scaled by part/whole, rounded once, half up (partial refunds)."""
    if whole_minor <= 0:
        raise ValueError("whole must be positive")
    return round_half_up(Decimal(amount_minor) * Decimal(part_minor) / Decimal(whole_minor))
