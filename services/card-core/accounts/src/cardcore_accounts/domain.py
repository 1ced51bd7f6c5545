"""The accounts domain: customer identity rules, account and card lifecycles, state events.

Pure Python (no database, no I/O; only the kernel's pure money parsing and formatting) so every
rule here is unit-testable in microseconds:
- identity documents: a PRC resident ID carries a GB 11643-1999 check character and the holder's
  birth date; mobiles are normalised to the 11-digit national form (`1` + 10 digits);
- the account and card state machines: each lifecycle action names the states it may start from
  and the state it leads to, and anything else is a `TransitionError` (HTTP 409 `invalid_state`);
- the `account.state` / `card.state` event payloads of docs/CONTRACTS.md, built from full state so
  the ledger can apply any one of them on its own.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from cardcore_kernel.money import AmountError, parse_exact_decimal, yuan

ID_TYPES: Final = ("resident_id", "passport", "hk_macau_pass", "taiwan_pass", "other")
PRODUCTS: Final = ("classic", "gold", "platinum")
ACCOUNT_STATUSES: Final = ("active", "frozen", "closed", "charged_off")
CARD_STATUSES: Final = ("inactive", "active", "frozen", "lost", "stolen", "closed", "expired")
CARD_ROLES: Final = ("primary", "supplementary")

# Cards that still stand for the account: an account has at most one such primary card.
LIVE_CARD_STATUSES: Final = frozenset({"inactive", "active", "frozen"})

DEFAULT_CASH_LIMIT_PCT: Final = 50
DEFAULT_DAILY_RATE: Final = Decimal("0.000500")
DAILY_RATE_PLACES: Final = 6
CARD_VALIDITY_YEARS: Final = 5
NAME_MAX_LENGTH: Final = 100

# GB 11643-1999: weights of the first 17 digits, and the check character per (sum mod 11).
_RESIDENT_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK_CHARS: Final = "10X98765432"
_DOCUMENT_NUMBER = re.compile(r"[A-Z0-9]{5,20}")
_NAME_PADDING: Final = " \t\r\n\u3000"  # ASCII whitespace and the full-width (ideographic) space


class DomainError(ValueError):
    """Input that breaks a business rule; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class TransitionError(Exception):
    """A lifecycle action that the current state does not allow."""

    def __init__(self, kind: str, action: str, status: str) -> None:
        super().__init__(f"{kind} is {status}; {action.replace('_', '-')!r} is not allowed")
        self.kind = kind
        self.action = action
        self.status = status


# ---------------------------------------------------------------------------------------------
# Identity documents, names, mobiles


def resident_id_check_char(first17: str) -> str:
    """The GB 11643-1999 (ISO 7064 MOD 11-2) check character of the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, _RESIDENT_ID_WEIGHTS, strict=True))
    return _RESIDENT_ID_CHECK_CHARS[total % 11]


def parse_resident_id(value: str) -> tuple[str, dt.date]:
    """A normalised 18-character resident ID and the birth date it encodes; DomainError if bad."""
    number = unicodedata.normalize("NFKC", value).strip().upper()
    if len(number) != 18 or not number[:17].isdigit():
        raise DomainError("id_number", "resident ID must be 17 digits and a check character")
    if resident_id_check_char(number[:17]) != number[17]:
        raise DomainError("id_number", "resident ID check character does not match")
    try:
        birth_date = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise DomainError("id_number", "resident ID does not encode a valid birth date") from None
    return number, birth_date


def normalize_id_number(id_type: str, value: str) -> tuple[str, dt.date | None]:
    """The stored form of an identity document number, and the birth date when it carries one."""
    if id_type not in ID_TYPES:
        raise DomainError("id_type", f"must be one of {', '.join(ID_TYPES)}")
    if id_type == "resident_id":
        return parse_resident_id(value)
    number = unicodedata.normalize("NFKC", value).strip().upper()
    if id_type == "other":
        if not number or len(number) > 32 or _has_control_characters(number):
            raise DomainError("id_number", "must be 1 to 32 printable characters")
        return number, None
    number = number.replace(" ", "")
    if not _DOCUMENT_NUMBER.fullmatch(number):
        raise DomainError("id_number", "must be 5 to 20 letters or digits")
    return number, None


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in value)


def normalize_name(value: str) -> str:
    """A customer name without surrounding ASCII or full-width spaces; never blank."""
    name = value.strip(_NAME_PADDING)
    if not name:
        raise DomainError("name", "must not be blank")
    if _has_control_characters(name):
        raise DomainError("name", "must not contain control characters")
    if len(name) > NAME_MAX_LENGTH:
        raise DomainError("name", f"must be at most {NAME_MAX_LENGTH} characters")
    return name


def normalize_mobile(value: str | None) -> str | None:
    """A mainland mobile number in national form (`1` + 10 digits), or None when absent.

    Accepts full-width digits, spaces, dashes, dots and parentheses, and the country code written
    as `+86`, `0086` or `86`.
    """
    if value is None:
        return None
    raw = unicodedata.normalize("NFKC", value).strip()
    if not raw:
        return None
    compact = re.sub(r"[\s\-.()]", "", raw)
    if compact.startswith("+"):
        if not compact.startswith("+86"):
            raise DomainError("mobile", "only mainland China (+86) mobiles are accepted")
        compact = compact[3:]
    elif compact.startswith("0086"):
        compact = compact[4:]
    elif compact.startswith("86") and len(compact) == 13:
        compact = compact[2:]
    if not (len(compact) == 11 and compact.isdigit() and compact[0] == "1"):
        raise DomainError("mobile", "must be a mainland mobile: 1 followed by 10 digits")
    return compact


# ---------------------------------------------------------------------------------------------
# Account terms


def parse_daily_rate(value: object) -> Decimal:
    """A daily interest rate as an exact Decimal in [0, 1) with at most 6 decimals.

    Absent (None) means the default; anything but a decimal string, an integer or a Decimal is a
    DomainError naming `daily_rate` (floats, booleans, objects, arrays: never a TypeError).
    """
    if value is None:
        return DEFAULT_DAILY_RATE
    try:
        rate = parse_exact_decimal(value, places=DAILY_RATE_PLACES, example="0.000500")
    except AmountError as exc:
        raise DomainError("daily_rate", str(exc)) from None
    if not Decimal(0) <= rate < Decimal(1):
        raise DomainError("daily_rate", "must be at least 0 and below 1")
    return rate.quantize(Decimal(1).scaleb(-DAILY_RATE_PLACES))


def format_daily_rate(rate: Decimal) -> str:
    return f"{rate:.{DAILY_RATE_PLACES}f}"


def card_expiry(issued_on: dt.date) -> str:
    """`YYYY-MM`, CARD_VALIDITY_YEARS after issue; the card is good through that month's end."""
    return f"{issued_on.year + CARD_VALIDITY_YEARS:04d}-{issued_on.month:02d}"


# ---------------------------------------------------------------------------------------------
# Lifecycles


@dataclass(frozen=True)
class Transition:
    allowed_from: frozenset[str]
    to: str


ACCOUNT_TRANSITIONS: Final = {
    "freeze": Transition(frozenset({"active"}), "frozen"),
    "unfreeze": Transition(frozenset({"frozen"}), "active"),
    "close": Transition(frozenset({"active", "frozen"}), "closed"),
}

CARD_TRANSITIONS: Final = {
    "activate": Transition(frozenset({"inactive"}), "active"),
    "freeze": Transition(frozenset({"active"}), "frozen"),
    "unfreeze": Transition(frozenset({"frozen"}), "active"),
    "report_lost": Transition(frozenset({"inactive", "active", "frozen"}), "lost"),
    "close": Transition(frozenset(CARD_STATUSES) - {"closed"}, "closed"),
}

# Account states in which its terms (such as the credit limit) may still change.
ACCOUNT_OPEN_STATUSES: Final = frozenset({"active", "frozen"})


def next_account_status(status: str, action: str) -> str:
    transition = ACCOUNT_TRANSITIONS[action]
    if status not in transition.allowed_from:
        raise TransitionError("account", action, status)
    return transition.to


def next_card_status(status: str, action: str) -> str:
    transition = CARD_TRANSITIONS[action]
    if status not in transition.allowed_from:
        raise TransitionError("card", action, status)
    return transition.to


# ---------------------------------------------------------------------------------------------
# State events (docs/CONTRACTS.md: accounts -> ledger)


def account_state_payload(account: dict[str, Any]) -> dict[str, Any]:
    """`account.state`: the account's full state; `credit_limit` in integer fen on the way in."""
    return {
        "account_id": account["account_id"],
        "customer_id": account["customer_id"],
        "bucket": account["bucket"],
        "product": account["product"],
        "credit_limit": yuan(account["credit_limit"]),
        "cash_limit_pct": account["cash_limit_pct"],
        "cycle_day": account["cycle_day"],
        "daily_rate": format_daily_rate(Decimal(account["daily_rate"])),
        "status": account["status"],
    }


def card_state_payload(card: dict[str, Any]) -> dict[str, Any]:
    """`card.state`: the card's full state (its holder as `customer_id`, the PAN only as HMAC)."""
    return {
        "card_id": card["card_id"],
        "account_id": card["account_id"],
        "customer_id": card["customer_id"],
        "bucket": card["bucket"],
        "pan_hmac": card["pan_hmac"],
        "status": card["status"],
        "expiry": card["expiry"],
        "role": card["role"],
    }
