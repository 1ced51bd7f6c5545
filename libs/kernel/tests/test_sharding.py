from collections import Counter

import pytest

from cardcore_kernel import ids
from cardcore_kernel.db import bucket_map
from cardcore_kernel.pan import PanVault, generate_pan, is_valid_pan, luhn_valid, mask_pan
from cardcore_kernel.sharding import BUCKET_COUNT, bucket_of


def test_bucket_of_is_stable_and_spread():
    assert bucket_of("000000000001") == bucket_of("000000000001")
    # pinned value: a change of hash function would silently re-route every customer
    assert (
        bucket_of("hello")
        == int.from_bytes(__import__("hashlib").blake2b(b"hello", digest_size=8).digest(), "big")
        % BUCKET_COUNT
    )
    counts = Counter(bucket_of(f"{n:012d}") for n in range(20_000))
    assert len(counts) == BUCKET_COUNT
    assert max(counts.values()) < 3 * 20_000 / BUCKET_COUNT


def test_ids_carry_their_bucket():
    customer = ids.new_customer_id()
    bucket = ids.bucket_of_id(customer, "customer")
    assert bucket == bucket_of(customer.split("_")[1][4:])
    card = ids.child_id("card", bucket)
    assert ids.bucket_of_id(card, "card") == bucket
    with pytest.raises(ids.InvalidIdError):
        ids.bucket_of_id(card, "account")
    with pytest.raises(ids.InvalidIdError):
        ids.bucket_of_id("nonsense")
    assert ids.customer_id_from_legacy("000000000042") == ids.customer_id_from_legacy(
        "000000000042 "
    )


def test_pan_generation_protection_and_masking():
    pan = generate_pan("622588")
    assert is_valid_pan(pan) and pan.startswith("622588")
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert mask_pan("6225881234567890") == "622588******7890"
    vault = PanVault(b"k" * 32, b"e" * 32)
    token = vault.encrypt(pan, "crd_0001x")
    assert pan not in token and vault.decrypt(token, "crd_0001x") == pan
    assert (
        vault.fingerprint(pan)
        == vault.fingerprint(pan)
        != PanVault(b"j" * 32, b"e" * 32).fingerprint(pan)
    )


def test_moving_a_bucket_changes_its_shard(settings):
    mapping = bucket_map(settings)
    assert mapping.shard_of(3) == 1 and mapping.shard_of(4) == 0
    mapping.move(3, 0)
    other_process_view = bucket_map(settings)
    assert other_process_view.shard_of(3) == 0
    with pytest.raises(ValueError):
        mapping.move(3, 7)
