"""Posts (issue 14): models filled in by the posts work; ``MODELS`` lists them for the schema."""

from __future__ import annotations

MODELS: tuple = ()
