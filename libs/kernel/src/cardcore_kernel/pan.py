"""PAN protection: a PAN is stored only as HMAC (for lookup) + AES-GCM ciphertext + last 4.

Also Luhn arithmetic for issuing and validating PANs, and masking for anything a person or a log
may see (first 6, asterisks, last 4).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial + digit` pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(pan: str) -> bool:
    return pan.isdigit() and len(pan) >= 2 and luhn_check_digit(pan[:-1]) == pan[-1]


def is_valid_pan(pan: str) -> bool:
    return len(pan) in (16, 19) and luhn_valid(pan)


def generate_pan(card_bin: str, length: int = 16) -> str:
    body_len = length - len(card_bin) - 1
    body = "".join(str(secrets.randbelow(10)) for _ in range(body_len))
    partial = card_bin + body
    return partial + luhn_check_digit(partial)


def mask_pan(pan: str) -> str:
    pan = pan.strip()
    if len(pan) < 11:
        return "*" * len(pan)
    return f"{pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]}"


class PanVault:
    """Keyed hashing and authenticated encryption of PANs with the stack's keys."""

    def __init__(self, hmac_key: bytes, encryption_key: bytes) -> None:
        if len(encryption_key) != 32:
            raise ValueError("PAN encryption key must be 32 bytes (AES-256)")
        self._hmac_key = hmac_key
        self._aead = AESGCM(encryption_key)

    def fingerprint(self, pan: str) -> str:
        return hmac.new(self._hmac_key, pan.encode("ascii"), hashlib.sha256).hexdigest()

    def encrypt(self, pan: str, card_id: str) -> str:
        """base64(nonce || ciphertext); the card id is bound in as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, pan.encode("ascii"), card_id.encode("ascii"))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, card_id: str) -> str:
        raw = base64.b64decode(token)
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        return self._aead.decrypt(nonce, sealed, card_id.encode("ascii")).decode("ascii")
