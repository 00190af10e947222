"""Groups (issue 14): models filled in by the groups work; ``MODELS`` lists them for the schema."""

from __future__ import annotations

MODELS: tuple = ()
