"""ipernity's ``api_sig`` (spec §4): md5 over sorted name+value pairs, method name and secret.

The same function signs an authorization link: there, the method name is left out (spec §4.2).
Values are the raw, decoded UTF-8 strings; ``api_sig`` itself is never part of the string, and file
parts never reach these functions (the transport keeps them apart).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

SIGNATURE_PARAM = "api_sig"
# A text parameter named ``file`` is signed like any other (ipernity-api 0.13 sends and signs the
# local path so); the upload itself is a file part, which never becomes a parameter.
UNSIGNED_PARAMS = frozenset({SIGNATURE_PARAM})


def signature_base_string(params: Mapping[str, str] | Iterable[tuple[str, str]],
                          method: str | None, secret: str) -> str:
    """The string that is hashed: ``name1value1name2value2…`` + method + secret."""
    pairs = params.items() if isinstance(params, dict | Mapping) else params
    kept = sorted([pair for pair in pairs if pair[0] not in UNSIGNED_PARAMS])
    return "".join([name + value for name, value in kept]) + (method or "") + secret


def signature(params: Mapping[str, str] | Iterable[tuple[str, str]],
              method: str | None, secret: str) -> str:
    """The lowercase hex ``api_sig`` of a request (``method=None`` for an authorization link)."""
    return hashlib.md5(signature_base_string(params, method, secret).encode("utf-8")).hexdigest()


def verify(params: Mapping[str, str] | Iterable[tuple[str, str]], method: str | None,
           secret: str, sent: str) -> bool:
    """Whether ``sent`` is the right signature; compares bytes so any input is safe."""
    expected = signature(params, method, secret).encode("ascii")
    given = sent.strip().lower().encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected, given)
