"""AES-256-GCM sealing with a versioned envelope: ``version || nonce || ciphertext+tag``."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionFailed(Exception):
    """The ciphertext was altered, belongs to another record, or its key is gone."""


def new_key() -> bytes:
    """A fresh 256-bit key."""
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext``; ``associated_data`` binds it to its place."""
    nonce = os.urandom(NONCE_BYTES)
    return bytes([VERSION]) + nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """Decrypt what :func:`seal` produced; raises :class:`DecryptionFailed` on any mismatch."""
    if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[0] != VERSION:
        raise DecryptionFailed("unknown envelope")
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, associated_data)
    except InvalidTag:
        raise DecryptionFailed("authentication failed") from None
