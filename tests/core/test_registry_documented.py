"""Every registered method is documented and speaks the spec's parameters (spec §9, §9.1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.methods import build_registry

# A copy of spec §9.1, so the check runs wherever the repository is cloned.
SPEC = Path(__file__).resolve().parents[1] / "golden" / "spec-parameters.md"
REGISTRY = build_registry()


def spec_parameters() -> dict[str, tuple[set[str], set[str]]]:
    """(all, required) parameter names per method from the spec's §9.1 list."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for line in SPEC.read_text().splitlines():
        found = re.match(r"- `([a-zA-Z.]+)`: (.*)$", line)
        if found and "." in found.group(1):
            names = [n.strip() for n in found.group(2).split(",") if n.strip() != "(none)"]
            out[found.group(1)] = ({n.rstrip("*") for n in names},
                                   {n.rstrip("*") for n in names if n.endswith("*")})
    return out


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda spec: spec.name)
def test_method_is_documented(spec):
    assert spec.title and spec.notes, "title and a docstring (shown as notes by api.methods.get)"
    undocumented = [p.name for p in spec.params if not p.help]
    assert not undocumented, f"parameters without help: {undocumented}"


SPEC_PARAMETERS = spec_parameters()


def test_the_spec_was_read():
    assert len(SPEC_PARAMETERS) > 80


# Methods added after the 2014 dump (doc.albums.add, doc.getExif …) have no parameter list there.
@pytest.mark.parametrize("spec", [s for s in REGISTRY if s.name in SPEC_PARAMETERS],
                         ids=lambda spec: spec.name)
def test_method_takes_the_spec_parameters(spec):
    names, required = SPEC_PARAMETERS[spec.name]
    ours = {p.name for p in spec.params}
    missing = names - ours - {"api_key", "auth_token"}
    assert not missing, f"spec parameters we do not take: {sorted(missing)}"
    ours_required = {p.name for p in spec.params if p.required}
    assert ours_required <= required | {"doc_id", "album_id"}, "required beyond the spec"


def test_coverage_is_total():
    """Every method of the original's registry (PyIpernity's methods.json, 102 names) answers
    here: a name missing from our registry fails, and so does one we answer that it lacks."""
    import importlib.resources
    import json

    original = set(json.loads(importlib.resources.files("ipernity").joinpath("methods.json")
                              .read_text()))
    ours = {spec.name for spec in REGISTRY}
    assert len(original) == 102
    assert sorted(original - ours) == []
    assert sorted(ours - original) == []
