"""Ids unique across shards that carry their bucket, so a service finds the shard without a lookup.

Format: `<prefix>_<bucket:04d><random>`, e.g. `cus_0412k3j9x2m4q7w8`. The random part is 16
characters of Crockford base32 (80 bits). Customer ids choose their bucket by hashing the random
part; every child id (account, card, authorization, ...) reuses its customer's bucket, which is
what keeps all of a customer's data on one shard.
"""

from __future__ import annotations

import secrets

from cardcore_kernel.sharding import BUCKET_COUNT, bucket_of

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RANDOM_LEN = 16

PREFIXES = {
    "customer": "cus",
    "account": "acc",
    "card": "crd",
    "authorization": "aut",
    "clearing": "clr",
    "posting": "pst",
    "event": "evt",
}


class InvalidIdError(ValueError):
    """A string that is not an id of the expected kind."""


def _random_part() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_LEN))


def new_customer_id() -> str:
    token = _random_part()
    return f"{PREFIXES['customer']}_{bucket_of(token):04d}{token}"


def customer_id_from_legacy(cust_no: str) -> str:
    """The deterministic id of a migrated customer: same legacy key, same id, same bucket."""
    cust_no = cust_no.strip()
    return f"{PREFIXES['customer']}_{bucket_of(cust_no):04d}L{cust_no}"


def child_id(kind: str, bucket: int) -> str:
    """A new id of `kind` living in `bucket` (the bucket of its customer)."""
    if not 0 <= bucket < BUCKET_COUNT:
        raise ValueError(f"bucket {bucket} out of range")
    return f"{PREFIXES[kind]}_{bucket:04d}{_random_part()}"


def legacy_child_id(kind: str, bucket: int, legacy_key: str) -> str:
    """The deterministic id of a migrated record (re-running a migration yields the same id)."""
    return f"{PREFIXES[kind]}_{bucket:04d}L{legacy_key.strip()}"


def bucket_of_id(value: str, kind: str | None = None) -> int:
    """The bucket embedded in an id; raises InvalidIdError if it is not one of ours."""
    prefix, sep, rest = value.partition("_")
    if not sep or len(rest) < 5 or not rest[:4].isdigit():
        raise InvalidIdError(f"not a cardcore id: {value!r}")
    if kind is not None and prefix != PREFIXES[kind]:
        raise InvalidIdError(f"not a {kind} id: {value!r}")
    if prefix not in PREFIXES.values():
        raise InvalidIdError(f"unknown id kind: {value!r}")
    bucket = int(rest[:4])
    if bucket >= BUCKET_COUNT:
        raise InvalidIdError(f"bucket out of range in {value!r}")
    return bucket
