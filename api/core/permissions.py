"""The permission table: the areas a token grants and the levels, lowest first (spec §5.1), the
highest level each area allows, and what areas and levels mean in plain words.

Tokens, the frob flow, the grant models, dispatch's permission step and the authorize and
authorized-applications pages read it from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PERMISSION_LEVELS = ("none", "read", "write", "delete")
PERMISSION_AREAS = ("doc", "blog", "post", "network", "profile")
NO_PERMISSIONS: Mapping[str, str] = MappingProxyType({})  # rendered as [] (spec §2.3 rule 5)
NO_LEVEL = PERMISSION_LEVELS[0]
# Spec §5.2: the profile can be read or written, never deleted.
MAX_LEVEL: Mapping[str, str] = MappingProxyType({"profile": "write"})

# What a grant means to a member, in plain words: "<level words> <area words>".
AREA_WORDS: Mapping[str, str] = MappingProxyType({
    "doc": "your photos, videos and documents", "blog": "your blog", "post": "your articles",
    "network": "your contacts (network)", "profile": "your profile"})
LEVEL_WORDS: Mapping[str, str] = MappingProxyType({
    "read": "See", "write": "See, add and change", "delete": "See, add, change and delete"})


def level_rank(level: str) -> int:
    """Position of a permission level in none < read < write < delete (unknown → -1)."""
    try:
        return PERMISSION_LEVELS.index(level)
    except ValueError:
        return -1


def levels_for(area: str) -> tuple[str, ...]:
    """The levels a grant may hold on ``area``, lowest first (``none`` up to its maximum)."""
    top = MAX_LEVEL.get(area, PERMISSION_LEVELS[-1])
    return PERMISSION_LEVELS[:PERMISSION_LEVELS.index(top) + 1]


def described(permissions: Mapping[str, str]) -> list[str]:
    """A grant in plain words, one line per area it grants more than ``none`` on."""
    return [f"{LEVEL_WORDS[level]} {AREA_WORDS[area]}"
            for area in PERMISSION_AREAS
            for level in [permissions.get(area, NO_LEVEL)] if level != NO_LEVEL]
