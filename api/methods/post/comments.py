"""Part of its family (see the package's docstring)."""

from __future__ import annotations

from api.core.registry import MethodGroup

group = MethodGroup()
