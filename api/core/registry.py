"""MethodSpec, MethodGroup and Registry: the name → handler table that dispatch and reflection read.

Each family module (``api/methods/doc/tags.py`` …) owns a ``MethodGroup`` and decorates its handlers
with ``@group.method("doc.tags.add", ...)``. The decorator records a ``MethodSpec`` (the spec's
``authentication`` flags, permissions, service, title, errors) and returns the handler unchanged.
``Registry`` joins the groups; a name registered twice fails at import (same group) or when the
registry is built (two groups). Parameters are bound against the handler's signature: the type
hint says how a value converts (``int``, ``float``, ``bool``, ``str``, each optionally ``| None``)
and ``Annotated[int, "The document ID."]`` carries the help text api.methods.get shows.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any

from api.core.errors import ApiError, InvalidPaging
from api.core.ids import INT_RANGE
from api.core.permissions import NO_PERMISSIONS

# Where a method's HTML documentation lives, under the server's base URL: api/web/help.py serves
# it, and api.methods.getList/get link there (``about``).
METHOD_HELP_PATH = "/help/api/method/"
_SPEC_MODIFIED_AT = "1228086000"  # 2008-12-01, "Method created." on the original's pages
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
_COUNT = re.compile(r"\+?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]{1,30}(\.[0-9]{0,30})?|\.[0-9]{1,30})([eE][+-]?[0-9]{1,3})?")
_PAGING = ("page", "per_page")  # not a positive integer: 143 in every method (api/core/paging.py)


@dataclass(frozen=True)
class Param:
    """One API parameter of a method, as bound from the handler signature."""

    name: str
    convert: Callable[[str], Any]
    required: bool
    default: Any
    help: str
    arg: str = ""  # the handler's keyword when it differs from ``name`` (``async_`` for ``async``)


@dataclass(frozen=True)
class MethodSpec:
    """Everything known about one API method; reflection is generated from this."""

    name: str
    handler: Callable[..., Any]
    title: str
    service: str
    token: bool = False
    sign: bool = False
    post: bool = False
    safety: bool = False
    perms: Mapping[str, str] | None = None  # None renders as "" (the two test.* methods, spec §7.1)
    params: tuple[Param, ...] = ()
    errors: tuple[type[ApiError], ...] = ()
    missing_error: type[ApiError] | None = None
    invalid_error: type[ApiError] | None = None
    notes: str = ""
    response: str = ""
    modified_at: str = _SPEC_MODIFIED_AT
    keyless: bool = False  # answers without api_key (api.methods.getList, spec §7.1)
    atomic: bool = False  # the handler runs in one transaction (POST methods unless they opt out)

    @cached_property
    def declared(self) -> frozenset[str]:
        """The names of its parameters (a signed call may send no other: dispatch, 146)."""
        return frozenset(param.name for param in self.params)

    @property
    def required_level(self) -> tuple[str, str] | None:
        """The (area, level) a token must grant, or None."""
        if not self.perms:
            return None
        return next(iter(self.perms.items()))

    def bind(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Keyword arguments for the handler from the request parameters (step 10 of dispatch)."""
        kwargs: dict[str, Any] = {}
        for param in self.params:
            raw = params.get(param.name)
            if raw is None or raw == "":
                if param.required:
                    raise (self.missing_error or ApiError)(f"missing parameter {param.name}")
                if raw == "" and param.convert is str:
                    kwargs[param.arg or param.name] = ""  # sent empty: clears, unlike absent
                continue
            convert = _count if param.name in _PAGING else param.convert
            try:
                value = convert(raw.strip() if convert is not str else raw)
            except (TypeError, ValueError):
                error = InvalidPaging if param.name in _PAGING else (
                    self.invalid_error or self.missing_error or ApiError)
                raise error(f"invalid value for {param.name}") from None
            kwargs[param.arg or param.name] = value
        return kwargs


def _converter(hint: Any) -> Callable[[str], Any]:
    """The str → value function for a parameter's type hint (evaluated, ``Annotated`` removed):
    ``int``, ``float``, ``bool`` or ``str``, alone or with ``None`` (``int | None``,
    ``Optional[int]``). Any other type fails at import rather than arrive as a string."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = _unannotated(kinds[0])[0] if len(kinds) == 1 else hint
    converter = _CONVERTERS.get(hint)
    if converter is None:
        raise TypeError(f"unsupported API parameter type {hint!r}")
    return converter


def _int(raw: str) -> int:
    """A decimal integer that fits the database's INTEGER columns (api/core/ids.py says why).
    ASCII digits only: Python's ``int`` also takes Arabic-Indic or fullwidth digits and ``1_2``."""
    if not _INTEGER.fullmatch(raw):
        raise ValueError(raw)
    value = int(raw)
    if value not in INT_RANGE:
        raise ValueError(raw)
    return value


def _count(raw: str) -> int:
    """``page``/``per_page``: any ASCII decimal, a huge one held at the largest INTEGER (paging
    then lowers ``per_page`` to the method's maximum, as it does for 500)."""
    if not _COUNT.fullmatch(raw):
        raise ValueError(raw)
    digits = raw.lstrip("+0") or "0"
    return INT_RANGE.stop - 1 if len(digits) > 10 else min(int(digits), INT_RANGE.stop - 1)


def _float(raw: str) -> float:
    """A finite decimal number (no nan or inf), in ASCII digits."""
    if not _DECIMAL.fullmatch(raw):
        raise ValueError(raw)
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _flag(raw: str) -> bool:
    """A 0/1 API flag; ``true``/``false`` in any case too (PyIpernity signs and sends ``True``)."""
    value = raw.lower()
    if value not in ("0", "1", "true", "false"):
        raise ValueError(raw)
    return value in ("1", "true")


_CONVERTERS: dict[Any, Callable[[str], Any]] = {int: _int, float: _float, bool: _flag, str: str}


class MethodGroup:
    """The methods of one family module; its ``method`` decorator fills it at import time."""

    def __init__(self) -> None:
        self.specs: dict[str, MethodSpec] = {}

    def method(self, name: str, *, title: str, service: str | None = None,
               token: bool = False, sign: bool = False, post: bool = False,
               safety: bool = False, perms: Mapping[str, str] | None = NO_PERMISSIONS,
               errors: Iterable[type[ApiError]] = (),
               missing: type[ApiError] | None = None, invalid: type[ApiError] | None = None,
               response: str = "", keyless: bool = False, atomic: bool | None = None,
               modified_at: str = _SPEC_MODIFIED_AT) -> Callable[[Callable[..., Any]],
                                                               Callable[..., Any]]:
        """Register the decorated handler as API method ``name``; the handler is returned as is.

        ``atomic`` (default: ``post``) runs the handler in one transaction; a method that does slow
        work outside the database (decoding an upload) says ``atomic=False`` and opens its own.
        """

        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            if name in self.specs:
                raise ValueError(f"API method {name} registered twice")
            bound = _signature_params(handler)
            # By code; at one code in the order given (errors, then missing, then invalid).
            errs = dict.fromkeys([*errors, *(e for e in (missing, invalid) if e)])
            if any(p.required for p in bound) and missing is None:
                raise ValueError(f"{name}: required parameters need a `missing` error")
            doc = inspect.getdoc(handler) or ""
            self.specs[name] = MethodSpec(
                name=name, handler=handler, title=title,
                service=service or name.rsplit(".", 1)[0].split(".")[0],
                token=token, sign=sign, post=post, safety=safety,
                perms=dict(perms) if perms is not None else None, params=bound,
                errors=tuple(sorted(errs, key=lambda e: e.code)), missing_error=missing,
                invalid_error=invalid, notes=doc, response=response, keyless=keyless,
                atomic=post if atomic is None else atomic, modified_at=modified_at)
            return handler

        return register


def _signature_params(handler: Callable[..., Any]) -> tuple[Param, ...]:
    """The API parameters a handler takes: every argument after ``call``, converted as its type
    hint says, with the help text its ``Annotated`` hint carries."""
    arguments = list(inspect.signature(handler).parameters.values())[1:]
    hints = _parameter_hints(handler, [param.name for param in arguments])
    out = []
    for param in arguments:
        required = param.default is inspect.Parameter.empty
        # A trailing underscore lets a parameter named after a Python keyword exist (``async_``).
        name = param.name.removesuffix("_")
        hint, help_text = _unannotated(hints[param.name])
        out.append(Param(name=name, convert=_converter(hint), required=required,
                         default=None if required else param.default,
                         help=help_text, arg=param.name))
    return tuple(out)


def _parameter_hints(handler: Callable[..., Any], names: list[str]) -> dict[str, Any]:
    """The evaluated type hints of ``names`` (``typing.get_type_hints`` with the extras kept).

    Only the API parameters are evaluated, not ``call`` or the return type, so a module may
    import those names for type checkers alone. A parameter without a hint is a ``str``.
    """
    annotations = getattr(handler, "__annotations__", {})
    wanted = types.SimpleNamespace(
        __annotations__={name: annotations.get(name, str) for name in names},
        __globals__=getattr(inspect.unwrap(handler), "__globals__", {}))
    return typing.get_type_hints(wanted, include_extras=True)


def _unannotated(hint: Any) -> tuple[Any, str]:
    """``Annotated[T, "help"]`` → (T, "help"); any other hint → (hint, "")."""
    if typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        return base, next((extra for extra in extras if isinstance(extra, str)), "")
    return hint, ""


@dataclass
class Registry:
    """All API methods by name."""

    specs: dict[str, MethodSpec] = field(default_factory=dict)

    @classmethod
    def from_groups(cls, groups: Iterable[MethodGroup]) -> Registry:
        """Join family groups; a name in two groups is an error."""
        registry = cls()
        for group in groups:
            for name, spec in group.specs.items():
                if name in registry.specs:
                    raise ValueError(f"API method {name} registered twice")
                registry.specs[name] = spec
        return registry

    def get(self, name: str) -> MethodSpec | None:
        """The method called ``name``, or None."""
        return self.specs.get(name)

    def __iter__(self):
        return iter(sorted(self.specs.values(), key=lambda spec: spec.name))
