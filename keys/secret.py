"""``Secret``: the one wrapper for a secret string (a key's secret, the session secret).

It lives in ``keys/`` because ``keys/`` may not import ``api/``; ``api.config`` uses it too.
"""

from __future__ import annotations

REDACTED = "***"


class Secret(str):
    """A string that never shows its value when formatted: ``str()``, ``repr()``, ``format()``,
    ``%s``, f-strings and log lines all give ``***``. ``reveal()`` gives the value, for the few
    places that need it (signing, the session key).

    It is still a ``str`` (equal to its value, hashable, truthy when not empty), so a value that
    only passes through keeps working; what reaches the value should say so with ``reveal()``.
    """

    __slots__ = ()

    def __str__(self) -> str:
        return REDACTED

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __format__(self, spec: str) -> str:
        return format(REDACTED, spec)

    def reveal(self) -> str:
        """The real value, as a plain ``str``."""
        return str.__str__(self)
