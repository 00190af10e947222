"""The one table of global API error codes (spec §3.1), and the base class for method-specific ones.

Every error carries a numeric ``code``, the short title as ``message`` (what goes on the wire,
spec §11.2), a machine ``label`` and the long ``description`` shown by ``api.methods.get``.
Method-specific codes (1..n)
are subclasses of ``ApiError`` declared beside their handlers.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error the API reports to its caller in the error envelope."""

    code: int = 500
    message: str = "Service error"
    label: str = ""
    description: str = ""

    def __init__(self, detail: str | None = None, *, shown: str = "") -> None:
        # ``detail`` is for logs and tests only; the wire carries ``message``, with ``shown`` in
        # parentheses after it when given (a fact the client needs: never a secret).
        super().__init__(detail or self.message)
        self.detail = detail
        if shown:
            self.message = f"{self.message} ({shown})"



def _global(code: int, label: str, message: str, description: str) -> type[ApiError]:
    """Declare one row of the global table as an ApiError subclass."""
    name = "".join(part.capitalize() for part in label.split("_"))
    return type(name, (ApiError,), {"code": code, "label": label, "message": message,
                                    "description": description, "__doc__": message})


ApiKeyMissing = _global(100, "api_key_missing", "API Key is missing",
                        "Please add the api_key parameter to this request.")
ApiKeyInvalid = _global(101, "api_key_invalid", "API Key is invalid",
                        "This API key is invalid or disabled.")
InvalidFormat = _global(102, "invalid_format", "Invalid format",
                        "The requested format is invalid. Valid formats are : json, xml, php.")
MethodNotFound = _global(103, "method_not_found", "Method not found",
                         "The requested method is invalid or missing.")
SignatureMissing = _global(104, "signature_missing", "Signature missing",
                           "The query signature is missing.")
SignatureInvalid = _global(105, "signature_invalid", "Signature is invalid",
                           "The query signature is invalid.")
TokenMissing = _global(106, "token_missing", "Token missing",
                       "User is not logged. The authentication token is missing.")
TokenInvalid = _global(107, "token_invalid", "Token invalid",
                       "The authentication token is invalid.")
AccountClosed = _global(108, "account_closed", "Account closed",
                        "The user account is closed or suspended.")
ActionBlocked = _global(109, "action_blocked", "Action blocked",
                        "This action is blocked because of a member or a group blocklist "
                        "restriction")
InsufficientPermissions = _global(110, "insufficient_permissions", "Insufficient permissions",
                                  "Insufficient permissions for this method.")
IpNotAllowed = _global(111, "ip_not_allowed", "IP not allowed",
                       "The request came from a remote address not allowed by this application.")
ApplicationQuota = _global(112, "application_quota", "Application Quota Error",
                           "The application has reached its requests quota.")
ClientIpQuota = _global(113, "client_ip_quota", "Client IP Quota Error",
                        "The client IP has reached a limit. Limits are based on requests per "
                        "seconds, minutes, hours, ...")
PostRequired = _global(120, "post_required", "HTTP POST required",
                       "This API method must be called using HTTP POST.")
InvalidSoapEnvelope = _global(121, "invalid_soap_envelope", "Invalid SOAP envelope",
                              "The SOAP envelope could not be parsed.")
InvalidXmlRpcEnvelope = _global(122, "invalid_xmlrpc_envelope", "Invalid XML-RPC envelope",
                                "The XML-RPC envelope could not be parsed.")
OAuthVersion = _global(130, "oauth_version", "OAuth protocol version unsupported",
                       "We only support OAuth version 1.0 and 1.0a")
OAuthParametersMissing = _global(131, "oauth_parameters_missing", "OAuth parameters are missing",
                                 "Some of the OAuth parameters were not sent.")
OAuthClockSkew = _global(132, "oauth_clock_skew", "OAuth Clock skew",
                         "The timestamp sent is out of ranges. Please check your computer clock "
                         "is not skewed.")
OAuthNonceUsed = _global(133, "oauth_nonce_used", "OAuth Nonce already used",
                         "The OAuth Nonce parameter cannot be used twice.")
OAuthTimestamp = _global(134, "oauth_timestamp", "OAuth Timestamp invalid",
                         "The OAuth Timestamp parameter is out of ranges (clock skew) or inferior "
                         "to the previous timestamp sent.")
OAuthSignatureMethod = _global(135, "oauth_signature_method", "OAuth Signature method invalid",
                               "The OAuth Signature must be either MD5, HMAC_SHA1 or PLAINTEXT "
                               "over HTTPS.")
# Our extensions (docs/protocol-choices.md): transport-level client mistakes the original never
# documented. They travel in the same envelope so no client ever sees a bare HTTP error page.
MalformedRequest = _global(140, "malformed_request", "Malformed request",
                           "The request could not be decoded: bad percent-encoding, invalid UTF-8 "
                           "or a broken multipart body.")
RequestTooLarge = _global(141, "request_too_large", "Request too large",
                          "The request body exceeds the size this server accepts.")
InvalidCallback = _global(142, "invalid_callback", "Invalid callback",
                          "The JSONP callback name is invalid, or JSONP was asked for on an "
                          "authenticated call.")
InvalidPaging = _global(143, "invalid_paging", "Invalid paging",
                        "page and per_page must be positive whole numbers (a per_page above the "
                        "method's maximum is lowered to it).")
TimestampOutOfRange = _global(144, "timestamp_out_of_range", "Timestamp out of range",
                              "The api_ts of an HMAC-SHA256 signed call is more than "
                              "API_HMAC_WINDOW seconds (300 by default) away from the server's "
                              "clock; the message ends with the server time.")
NonceUsed = _global(145, "nonce_used", "Nonce already used",
                    "The api_nonce of an HMAC-SHA256 signed call was already used with this key "
                    "within the timestamp window (a replay); the message ends with the server "
                    "time.")
UnknownParameter = _global(146, "unknown_parameter", "Unknown parameter",
                           "A signed call sent a parameter this method does not take (named in "
                           "the message); only the protocol's own parameters and lg may be "
                           "added, and on an MD5 call those nothing reads only in their strict "
                           "shape (docs/signing.md).")
ServiceError = _global(500, "service_error", "Service error",
                       "Service error: something went wrong on our side.")
MaintenanceMode = _global(501, "maintenance_mode", "Maintenance mode",
                          "The service is in maintenance mode. Please retry later.")
ServiceUnavailable = _global(503, "service_unavailable", "Service unavailable",
                             "The service is temporarily unavailable. Please retry later.")
RETRY_AFTER_SECONDS = 5  # the Retry-After of every HTTP 503: a busy database clears in seconds

GLOBAL_ERRORS: tuple[type[ApiError], ...] = tuple(
    sorted((cls for cls in list(globals().values())
            if isinstance(cls, type) and issubclass(cls, ApiError) and cls is not ApiError),
           key=lambda cls: cls.code))
# The global errors every method can answer with, listed after each method's own (spec §7.2) by
# api.methods.get and the method pages (143, invalid paging, only where a method pages; 144-146
# everywhere, since any call may be signed).
COMMON_ERRORS: tuple[type[ApiError], ...] = tuple(
    e for e in GLOBAL_ERRORS if e.code < 140 or 144 <= e.code <= 146 or e.code >= 500)


def method_error(code: int, message: str, description: str = "") -> type[ApiError]:
    """Declare a method-specific error (codes 1..n) for a handler module."""
    name = "".join(w.capitalize() for w in message.replace("-", " ").split() if w.isalnum()) or "E"
    return type(name + "Error", (ApiError,), {"code": code, "message": message,
                                              "description": description or message,
                                              "__doc__": message})
