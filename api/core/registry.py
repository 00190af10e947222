"""MethodSpec, MethodGroup and Registry: the name → handler table that dispatch and reflection read.

Each family module (``api/methods/doc/tags.py`` …) owns a ``MethodGroup`` and decorates its handlers
with ``@group.method("doc.tags.add", ...)``. The decorator records a ``MethodSpec`` (the spec's
``authentication`` flags, permissions, service, title, parameter help, errors) and returns the
handler unchanged. ``Registry`` joins the groups; a name registered twice fails at import (same
group) or when the registry is built (two groups). Parameters are bound against the handler's
signature.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api.core.errors import ApiError, InvalidPaging
from api.core.ids import INT_RANGE
from api.core.permissions import NO_PERMISSIONS

_SPEC_MODIFIED_AT = "1228086000"  # 2008-12-01, "Method created." on the original's pages
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
            try:
                value = param.convert(raw.strip() if param.convert is not str else raw)
            except (TypeError, ValueError):
                error = InvalidPaging if param.name in _PAGING else (
                    self.invalid_error or self.missing_error or ApiError)
                raise error(f"invalid value for {param.name}") from None
            kwargs[param.arg or param.name] = value
        return kwargs


def _converter(annotation: Any) -> Callable[[str], Any]:
    """The str → value function for a parameter annotation (annotations are strings here)."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "str")
    kind = kind.replace(" | None", "")
    if kind == "int":
        return _int
    if kind == "float":
        return _float
    if kind == "bool":
        return _flag
    return str


def _int(raw: str) -> int:
    """A decimal integer that fits the database's INTEGER columns (api/core/ids.py says why)."""
    value = int(raw)
    if value not in INT_RANGE:
        raise ValueError(raw)
    return value


def _float(raw: str) -> float:
    """A finite decimal number (no nan or inf)."""
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


class MethodGroup:
    """The methods of one family module; its ``method`` decorator fills it at import time."""

    def __init__(self) -> None:
        self.specs: dict[str, MethodSpec] = {}

    def method(self, name: str, *, title: str, service: str | None = None,
               token: bool = False, sign: bool = False, post: bool = False,
               safety: bool = False, perms: Mapping[str, str] | None = NO_PERMISSIONS,
               params: Mapping[str, str] | None = None,
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
            bound = _signature_params(handler, params or {})
            errs = tuple(errors) + tuple(e for e in (missing, invalid) if e and e not in errors)
            if any(p.required for p in bound) and missing is None:
                raise ValueError(f"{name}: required parameters need a `missing` error")
            doc = inspect.getdoc(handler) or ""
            self.specs[name] = MethodSpec(
                name=name, handler=handler, title=title,
                service=service or name.rsplit(".", 1)[0].split(".")[0],
                token=token, sign=sign, post=post, safety=safety,
                perms=dict(perms) if perms is not None else None, params=bound,
                errors=tuple(sorted(set(errs), key=lambda e: e.code)), missing_error=missing,
                invalid_error=invalid, notes=doc, response=response, keyless=keyless,
                atomic=post if atomic is None else atomic, modified_at=modified_at)
            return handler

        return register


def _signature_params(handler: Callable[..., Any], helps: Mapping[str, str]) -> tuple[Param, ...]:
    """The API parameters a handler takes: every argument after ``call``."""
    signature = inspect.signature(handler)
    out = []
    for param in list(signature.parameters.values())[1:]:
        required = param.default is inspect.Parameter.empty
        # A trailing underscore lets a parameter named after a Python keyword exist (``async_``).
        name = param.name.removesuffix("_")
        out.append(Param(name=name, convert=_converter(param.annotation), required=required,
                         default=None if required else param.default,
                         help=helps.get(name, ""), arg=param.name))
    unknown = set(helps) - {p.name for p in out}
    if unknown:
        raise ValueError(f"{handler.__qualname__}: help for unknown parameters {sorted(unknown)}")
    return tuple(out)


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
