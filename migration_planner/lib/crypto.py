"""Encryption of secrets at rest with MultiFernet (keys from FERNET_KEYS, rotation-friendly).

The first key encrypts; every key decrypts, so a new key is prepended and old ciphertexts keep
working until re-encrypted. Without FERNET_KEYS a development key is generated once into
FERNET_KEY_FILE (git-ignored, mode 0600).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from .errors import ApplicationError


def _dev_key(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = [k.encode() for k in settings.FERNET_KEYS if k] or [_dev_key(settings.FERNET_KEY_FILE)]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt(plaintext: str) -> str:
    """Encrypt a secret; returns URL-safe ciphertext text. Pure apart from key loading."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt a stored secret; raises ApplicationError when no configured key fits."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ApplicationError(
            "The stored secret cannot be decrypted with the configured keys."
        ) from exc


def reset_key_cache() -> None:
    """Forget loaded keys (tests and key rotation)."""
    _fernet.cache_clear()
