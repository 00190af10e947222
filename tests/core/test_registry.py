"""The registry reads a handler's type hints: how each parameter converts and, from ``Annotated``,
its help; ``Paging`` makes the paging help from the numbers the handler pages with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional, Union

import pytest

from api.core.errors import InvalidPaging, method_error
from api.core.paging import NUMBER_OF, Paging
from api.core.registry import MethodGroup

if TYPE_CHECKING:  # only the checker sees this name: the registry must not need it
    from api.core.context import Call

Bad = method_error(1, "Bad thing")
Count = Annotated[int | None, "How many."]


def specs() -> dict:
    group = MethodGroup()

    @group.method("probe.kinds", title="Every kind of hint", missing=Bad, invalid=Bad)
    def kinds(call: Call, plain: int, union: int | None = None,
              optional: Optional[int] = None,  # noqa: UP045 (the spelling under test)
              old_union: Union[int, None] = None,  # noqa: UP007 (the spelling under test)
              annotated: Annotated[int | None, "An optional number."] = None,
              alias: Count = None, ratio: Annotated[float | None, "A ratio."] = None,
              flag: Annotated[bool, "A flag."] = False, text: str | None = None,
              bare="") -> dict:  # no hint at all: a string
        """Probe."""
        return {}

    return {param.name: param for param in group.specs["probe.kinds"].params}


@pytest.mark.parametrize("name", ["plain", "union", "optional", "old_union", "annotated",
                                  "alias"])
def test_every_spelling_of_an_optional_int_converts_as_int(name):
    assert specs()[name].convert("42") == 42
    with pytest.raises(ValueError):
        specs()[name].convert("4.2")


def test_other_kinds_convert_by_their_hint():
    params = specs()
    assert params["ratio"].convert("0.5") == 0.5
    assert params["flag"].convert("true") is True and params["flag"].convert("0") is False
    assert params["text"].convert("42") == "42" and params["bare"].convert("42") == "42"


def test_help_comes_from_annotated():
    params = specs()
    assert params["annotated"].help == "An optional number."
    assert params["alias"].help == "How many."
    assert params["flag"].help == "A flag."
    assert params["plain"].help == "" and params["union"].help == ""


def test_required_and_defaults_come_from_the_signature():
    params = specs()
    assert params["plain"].required and not params["union"].required
    assert params["flag"].default is False and params["union"].default is None


def test_bound_values_are_converted():
    group = MethodGroup()

    @group.method("probe.bind", title="Bind", missing=Bad, invalid=Bad)
    def bind(call: Call, doc_id: Annotated[int, "The doc."],
             page: Annotated[int | None, "The page."] = None) -> dict:
        """Probe."""
        return {}

    spec = group.specs["probe.bind"]
    assert spec.bind({"doc_id": " 7 ", "page": "2"}) == {"doc_id": 7, "page": 2}
    with pytest.raises(Bad):
        spec.bind({"doc_id": "x"})
    with pytest.raises(InvalidPaging):
        spec.bind({"doc_id": "7", "page": "x"})


@pytest.mark.parametrize("raw", ["\u0661\u0662", "\uff11\uff12", "1_2", "12 3", "0x1f", "", "--1"])
def test_numbers_are_ascii_decimals(raw):
    """Python's int() and float() also take other scripts' digits and underscores."""
    params = specs()
    for name in ("plain", "ratio"):
        with pytest.raises(ValueError):
            params[name].convert(raw)


@pytest.mark.parametrize("raw, per_page", [("500", 100), ("2147483648", 100),
                                           ("9" * 40, 100), ("+7", 7), ("007", 7)])
def test_a_huge_per_page_is_lowered_like_any_other(raw, per_page):
    group = MethodGroup()
    probe_page = Paging("things", default=10, maximum=100)

    @group.method("probe.list", title="List", missing=Bad, invalid=Bad)
    def listing(call: Call, page: Annotated[int | None, "The page."] = None,
                per_page: Annotated[int | None, "How many."] = None) -> dict:
        """Probe."""
        return {}

    bound = group.specs["probe.list"].bind({"per_page": raw, "page": "99999999999"})
    assert probe_page.page(bound["page"], bound["per_page"]).per_page == per_page
    for bad in ("\u0663", "1_0", "-1", "1.5"):
        with pytest.raises(InvalidPaging):
            group.specs["probe.list"].bind({"per_page": bad})


def test_an_unsupported_type_fails_at_registration():
    group = MethodGroup()
    with pytest.raises(TypeError, match="unsupported API parameter type"):
        @group.method("probe.list", title="A list", invalid=Bad)
        def listed(call: Call, ids: list[int] | None = None) -> dict:
            """Probe."""
            return {}


def test_errors_are_by_code_then_in_the_order_given():
    group = MethodGroup()
    Second = method_error(2, "Second")
    Other = method_error(2, "Other")

    @group.method("probe.errors", title="Errors", errors=(Second, Bad), missing=Other,
                  invalid=Bad)
    def errors(call: Call, value: int) -> dict:
        """Probe."""
        return {}

    assert group.specs["probe.errors"].errors == (Bad, Second, Other)


def test_paging_help_is_made_from_its_numbers():
    docs = Paging("Docs", default=20, maximum=100)
    assert docs.per_page_help == "Docs per page: 20 by default, at most 100."
    assert docs.page_help == "The page, from 1."
    visitors = Paging("visitors", default=10, maximum=50, wording=NUMBER_OF)
    assert visitors.per_page_help == "Number of visitors per page (default 10, max 50)."
    assert visitors.page_help == "The page of results to return (default 1)."


def test_paging_pages_with_the_same_numbers():
    visitors = Paging("visitors", default=10, maximum=50, wording=NUMBER_OF)
    assert (visitors.page(None, None).page, visitors.page(None, None).per_page) == (1, 10)
    assert visitors.page(3, 500).per_page == 50
    with pytest.raises(InvalidPaging):
        visitors.page(0, None)
