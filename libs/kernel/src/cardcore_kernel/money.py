"""Money: integer fen inside, decimal strings in yuan at every edge. Never float.

Interest accrues in units of 1/10000 yuan (1/100 fen, "micro") so that daily accruals can stay
unrounded to 4 decimals until they post, rounded half-up, to the fen.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN_PER_YUAN = 100
MICRO_PER_FEN = 100
MAX_AMOUNT_FEN = 10**15  # DECIMAL(15,2) headroom


class AmountError(ValueError):
    """An amount that is not a positive yuan value with at most two decimals."""


MAX_DECIMAL_CHARS = 64  # longer than any amount or rate we accept; bounds the parsing work


def parse_exact_decimal(value: object, *, places: int, example: str) -> Decimal:
    """A decimal from the wire (a string such as `example`, or an integer), exact, finite.

    Rejects floats (they are not exact), booleans, and anything else JSON can carry (objects,
    arrays, null) with AmountError: a ValueError, so inside a pydantic validator it becomes the
    422 naming the field. Nothing here does context arithmetic, which could overflow (a
    `decimal.Overflow` is not a ValueError and would surface as a 500) or build a huge integer:
    callers bound the magnitude by comparison (exact, never overflows) before any arithmetic.
    """
    if isinstance(value, float):
        raise AmountError(f'must be a decimal string such as "{example}", not a float')
    if isinstance(value, bool):
        raise AmountError(f'must be a decimal string such as "{example}", not a boolean')
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        if abs(value) >= 10**MAX_DECIMAL_CHARS:
            raise AmountError("is too large")
        amount = Decimal(value)
    elif isinstance(value, str):
        if len(value) > MAX_DECIMAL_CHARS:
            raise AmountError(f"is longer than {MAX_DECIMAL_CHARS} characters")
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise AmountError("is not a number") from None
    else:
        raise AmountError(f'is not a number (a decimal string such as "{example}")')
    if not amount.is_finite():
        raise AmountError("is not a finite number")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        raise AmountError(f"has more than {places} decimals")
    return amount


def parse_yuan(value: object, *, allow_zero: bool = False) -> int:
    """A yuan amount ("150.00", "150", 150) as integer fen; rejects floats and bad precision."""
    amount = parse_exact_decimal(value, places=2, example="150.00")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise AmountError("must be greater than 0")
    if amount >= Decimal(MAX_AMOUNT_FEN).scaleb(-2):
        raise AmountError("is too large")
    return int(amount.scaleb(2))


def yuan(fen: int) -> str:
    """Integer fen as a yuan decimal string: 15000 -> "150.00", -5 -> "-0.05"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{cents:02d}"


def to_decimal(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def decimal_to_fen(amount: Decimal) -> int:
    """An exact yuan Decimal (at most 2 decimals) as fen; raises if precision would be lost."""
    fen = amount * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise AmountError(f"{amount} has more than 2 decimals")
    return int(fen)


def micro_to_fen_half_up(micro: int) -> int:
    """Accrued interest in 1/100 fen rounded half-up (away from zero on .5) to fen."""
    return int((Decimal(micro) / MICRO_PER_FEN).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent_of(fen: int, percent: int) -> int:
    """`percent` % of an amount in fen, rounded half-up to the fen."""
    return int((Decimal(fen) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
