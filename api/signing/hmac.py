"""HMAC-SHA256 request signatures (docs/signing.md): a client's choice beside MD5's ``api_sig``.

The signed string is ``HTTP_METHOD + "\\n" + PATH + "\\n" + PARAMS``, PARAMS being every received
parameter but ``api_sig`` (file parts never reach here), each name and value percent-encoded as
RFC 3986 §2 says (UTF-8, unreserved characters kept, upper-case hex), written ``name=value``,
sorted by encoded name then encoded value and joined with ``&``. Unlike MD5's bare concatenation,
no two parameter lists give the same string, so a signed value cannot be split into two.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

SIGNATURE_PARAM = "api_sig"
METHOD_PARAM = "api_sig_method"
TIMESTAMP_PARAM = "api_ts"
NONCE_PARAM = "api_nonce"
HMAC_SHA256 = "hmac-sha256"  # the one value of api_sig_method that selects this scheme
NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")  # whole UNIX seconds, ASCII digits only


def encode(text: str) -> str:
    """RFC 3986 percent-encoding of ``text``'s UTF-8 bytes; only ``A-Za-z0-9-._~`` stay as is."""
    return quote(text, safe="", encoding="utf-8", errors="strict")


def normalized_params(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """PARAMS: encoded ``name=value`` pairs, sorted, joined with ``&`` (``api_sig`` left out)."""
    pairs = params.items() if isinstance(params, Mapping) else params
    encoded = sorted((encode(name), encode(value)) for name, value in pairs
                     if name != SIGNATURE_PARAM)
    return "&".join(f"{name}={value}" for name, value in encoded)


def base_string(http_method: str, path: str,
                params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """The string that is signed: method, path as sent and PARAMS, one per line."""
    return f"{http_method.upper()}\n{path}\n{normalized_params(params)}"


def signature(http_method: str, path: str,
              params: Mapping[str, str] | Iterable[tuple[str, str]], secret: str) -> str:
    """The lowercase hex HMAC-SHA256 of the base string, keyed with the key's secret."""
    message = base_string(http_method, path, params).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(http_method: str, path: str, params: Mapping[str, str] | Iterable[tuple[str, str]],
           secret: str, sent: str) -> bool:
    """Whether ``sent`` is the right signature; compares bytes, so any input is safe."""
    expected = signature(http_method, path, params, secret).encode("ascii")
    return hmac.compare_digest(expected, sent.strip().lower().encode("utf-8", "surrogatepass"))
