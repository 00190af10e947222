"""The registry's flags as PyIpernity's methods.json (the original's method list) has them."""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Iterable
from typing import Any

FIELDS = ("authentication", "permissions", "service", "title", "modified_at")


def assert_listed_as_in_pyipernity(call: Any, names: Iterable[str]) -> None:
    """``api.methods.getList`` shows each method with the original's flags, permissions,
    service, title and date."""
    original = json.loads(importlib.resources.files("ipernity").joinpath("methods.json")
                          .read_text())
    listed = {m["name"]: m for m in call("api.methods.getList")["methods"]["method"]}
    for name in names:
        for field in FIELDS:
            assert listed[name][field] == original[name][field], (name, field)
