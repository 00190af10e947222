"""The ``faves.*`` family: a member's favourite documents and albums (spec §9, method-shapes.md)."""

from __future__ import annotations

from api.core.registry import MethodGroup

group = MethodGroup()
