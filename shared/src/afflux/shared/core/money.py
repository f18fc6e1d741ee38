"""Money in integer minor units with an ISO 4217 currency; Decimal only for rates.

Every amount that enters afflux is an integer within ``MAX_AMOUNT_MINOR`` (a
campaign may allow less per order, see ``terms.max_order_minor``). Rates and
ratios are computed in exact integer arithmetic, never in a Decimal context of
limited precision, so no amount can make a computation overflow, round early
or raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

# Minor-unit exponents of the ISO 4217 currencies in circulation (funds, metals and
# testing codes left out: no program pays in them), with the two withdrawn lately (ANG
# for XCG in 2025, ZWL for ZWG in 2024) kept, as campaigns may still be written in them.
# A campaign has one currency, so an unknown code is a configuration error caught when
# the terms are loaded.
_EXPONENT_OF_CODES = {
    0: """
        BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND
        VUV XAF XOF XPF
    """,
    2: """
        AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD
        BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
        CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP
        ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD
        HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR
        KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD
        MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN
        NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON
        RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD
        SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD
        TZS UAH USD UYU UZS VED VES WST XCD XCG YER ZAR
        ZMW ZWG ZWL
    """,
    3: """
        BHD IQD JOD KWD LYD OMR TND
    """,
}
CURRENCY_EXPONENTS: dict[str, int] = {
    code: exponent for exponent, codes in _EXPONENT_OF_CODES.items() for code in codes.split()
}


# The largest amount any event or plan element may carry: 10^15 minor units stays
# below 2^53, so every amount is exact in a JavaScript number or a double too.
MAX_AMOUNT_MINOR = 10**15
# A campaign's default largest order (``max_order_minor``): 10 billion in a
# two-decimal currency.
DEFAULT_MAX_ORDER_MINOR = 10**12


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


def check_currency(code: str) -> str:
    """Return ``code`` if it is a supported ISO 4217 code, else raise ValueError."""
    if code not in CURRENCY_EXPONENTS:
        raise ValueError(
            f"unsupported currency {code!r}: use the ISO 4217 code of a currency in"
            " circulation, in capitals (EUR, USD, JPY); funds, metals and test codes are none"
        )
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
        """For a person: ``1,234,567.89 EUR`` (thousands grouped, as English text prints
        money; files and APIs carry minor units, never this)."""
        exponent = CURRENCY_EXPONENTS[self.currency]
        value = Decimal(self.amount_minor).scaleb(-exponent)
        return f"{value:,.{exponent}f} {self.currency}"


def round_half_up(value: Decimal) -> int:
    """Round a Decimal amount of minor units to an integer, halves away from zero."""
    numerator, denominator = value.as_integer_ratio()
    return divide_half_up(numerator, denominator)


def divide_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to an integer, halves away from zero; exact
    for integers of any size."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def percent_of(amount_minor: int, percent: Decimal) -> int:
    """``percent`` % of ``amount_minor``, rounded once, half up."""
    numerator, denominator = percent.as_integer_ratio()
    return divide_half_up(amount_minor * numerator, denominator * 100)


def pro_rata(amount_minor: int, part_minor: int, whole_minor: int) -> int:
    """``amount_minor`` scaled by part/whole, rounded once, half up (partial refunds)."""
    if whole_minor <= 0:
        raise ValueError("whole must be positive")
    return divide_half_up(amount_minor * part_minor, whole_minor)


_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # the field's bounds then say what is wrong


def plain_decimal(value: object) -> object:
    """A decimal of campaign terms given as text is plain ASCII ("8", "12.5"): Decimal
    also reads other scripts' digits (Arabic-Indic, fullwidth) as numbers and "1e1" as
    10 (shown as "1E+1%" in every rule). For a ``BeforeValidator``."""
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a plain decimal number (e.g. 8 or 12.5)")
    return value
