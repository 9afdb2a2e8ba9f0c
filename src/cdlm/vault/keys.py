"""Key providers: what wraps the per-customer data keys (a local master key, or AWS KMS)."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any, Protocol

from cdlm.config import ConfigError, Settings
from cdlm.core.private_files import create_once
from cdlm.vault import crypto


class KeyProvider(Protocol):
    """Wraps and unwraps data keys; the master key itself never leaves the provider."""

    name: str

    def wrap(self, data_key: bytes, context: str) -> bytes:
        """``data_key`` encrypted under the master key, bound to ``context``."""
        ...

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        """The data key inside ``wrapped``; raises when ``context`` does not match."""
        ...


class LocalKeyProvider:
    """A 256-bit master key from a file, created on first use with mode 0600."""

    name = "local"

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != crypto.KEY_BYTES:
            raise ValueError("the master key must be 32 bytes")
        self._master_key = master_key

    @classmethod
    def from_file(cls, path: Path) -> LocalKeyProvider:
        """The provider of the key in ``path``, creating the file the first time."""
        if not path.exists():
            create_once(path, base64.b64encode(crypto.new_key()).decode())
        try:
            key = base64.b64decode(path.read_text(encoding="utf-8").strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                "CDLM_MASTER_KEY_FILE", f"{path} does not hold a base64 key"
            ) from None
        if len(key) != crypto.KEY_BYTES:
            raise ConfigError("CDLM_MASTER_KEY_FILE", f"{path} must hold a 32-byte key")
        return cls(key)

    def wrap(self, data_key: bytes, context: str) -> bytes:
        return crypto.seal(self._master_key, data_key, context.encode())

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        return crypto.open_sealed(self._master_key, wrapped, context.encode())


class KmsKeyProvider:
    """AWS KMS: data keys are encrypted by a KMS key, with the context as encryption context."""

    name = "aws-kms"

    def __init__(self, key_id: str, client: Any = None) -> None:
        if client is None:
            try:
                import boto3
            except ImportError:  # pragma: no cover - depends on the installed extras
                raise ConfigError(
                    "CDLM_KMS_KEY_ID", "needs the aws extra: pip install 'cdlm[aws]'"
                ) from None
            client = boto3.client("kms")
        self._client = client
        self.key_id = key_id

    def wrap(self, data_key: bytes, context: str) -> bytes:
        answer = self._client.encrypt(
            KeyId=self.key_id, Plaintext=data_key, EncryptionContext={"cdlm": context}
        )
        blob: bytes = answer["CiphertextBlob"]
        return blob

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        try:
            answer = self._client.decrypt(
                CiphertextBlob=wrapped, KeyId=self.key_id, EncryptionContext={"cdlm": context}
            )
        except Exception as error:  # botocore's ClientError: wrong context, revoked grant, ...
            raise crypto.DecryptionFailed(type(error).__name__) from None
        plaintext: bytes = answer["Plaintext"]
        return plaintext


def provider_from_settings(settings: Settings) -> KeyProvider:
    """KMS when ``CDLM_KMS_KEY_ID`` is set, else the local master key file."""
    if settings.kms_key_id:
        return KmsKeyProvider(settings.kms_key_id)
    return LocalKeyProvider.from_file(settings.master_key_file)
