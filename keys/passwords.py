"""Password hashing with argon2 (argon2-cffi); clear passwords are never stored or logged.

The cost profile is argon2-cffi's RFC 9106 low-memory one unless ``API_PASSWORD_PROFILE`` names
another (``CHEAPEST`` keeps the test suite fast; never use it in production). Stored hashes carry
their own parameters, so changing the profile never locks anyone out.
"""

from __future__ import annotations

import os
from functools import cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError


@cache
def _hasher() -> PasswordHasher:
    """The hasher for the configured profile, built on first use (no import-time side effects)."""
    name = os.environ.get("API_PASSWORD_PROFILE", "RFC_9106_LOW_MEMORY")
    return PasswordHasher.from_parameters(getattr(profiles, name))


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher().hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; never raises on a bad hash."""
    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
