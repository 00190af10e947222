"""The original's ``MD5`` OAuth signature method (spec §5.5), which oauthlib does not know.

oauthlib builds the signature base string (RFC 5849 §3.4.1) and signs it with HMAC or PLAINTEXT;
MD5 is the oauth-php family's method: the lowercase hex MD5 of that base string followed by
``&`` + the encoded consumer secret + ``&`` + the encoded token secret (the HMAC key, RFC 5849
§3.4.2). Clients register ``sign_md5_with_client`` through oauthlib's own extension point,
``oauthlib.oauth1.Client.register_signature_method("MD5", …)``; the provider verifies with
``verify_md5`` (api/auth/oauth.py), oauthlib's endpoints having no such hook on the server side.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from oauthlib.oauth1.rfc5849 import signature, utils

SIGNATURE_MD5 = "MD5"


def md5_signature(base_string: str, client_secret: str, token_secret: str) -> str:
    """The MD5 method's signature of an RFC 5849 base string."""
    keyed = f"{base_string}&{utils.escape(client_secret or '')}&{utils.escape(token_secret or '')}"
    return hashlib.md5(keyed.encode("utf-8")).hexdigest()


def sign_md5_with_client(base_string: str, client: Any) -> str:
    """The callback oauthlib's Client.register_signature_method takes (a client's side)."""
    return md5_signature(base_string, client.client_secret, client.resource_owner_secret)


def verify_md5(request: Any, client_secret: str, token_secret: str | None) -> bool:
    """Whether an oauthlib request's ``oauth_signature`` is its MD5 signature; the base string is
    oauthlib's, as its verify_hmac_* functions build it."""
    base = signature.signature_base_string(
        request.http_method, signature.base_string_uri(request.uri),
        signature.normalize_parameters(request.params))
    expected = md5_signature(base, client_secret, token_secret or "").encode("ascii")
    sent = (request.signature or "").strip().lower().encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected, sent)
