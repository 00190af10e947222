"""The permission table: the areas a token grants and the levels, lowest first (spec §5.1).

Tokens, the frob flow, the grant models and dispatch's permission step read it from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PERMISSION_LEVELS = ("none", "read", "write", "delete")
PERMISSION_AREAS = ("doc", "blog", "post", "network", "profile")
NO_PERMISSIONS: Mapping[str, str] = MappingProxyType({})  # rendered as [] (spec §2.3 rule 5)


def level_rank(level: str) -> int:
    """Position of a permission level in none < read < write < delete (unknown → -1)."""
    try:
        return PERMISSION_LEVELS.index(level)
    except ValueError:
        return -1
