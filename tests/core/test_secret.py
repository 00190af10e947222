"""keys.secret.Secret: no way of formatting a secret shows it; reveal() does."""

from __future__ import annotations

import logging

import pytest

from api.config import Settings
from keys.secret import Secret
from keys.store import KeyRecord

VALUE = "0123456789abcdef-the-real-secret"


def formatted(secret: Secret) -> list[str]:
    """Every ordinary way a value ends up in a message."""
    return ["%s" % secret, "%r" % (secret,), "%(s)s" % {"s": secret}, f"{secret}",  # noqa: UP031
            f"{secret!s}", f"{secret!r}", f"{secret:>40}", f"{secret=}", str(secret),
            repr(secret), format(secret), "{}".format(secret), "{!s}".format(secret),  # noqa: UP032
            str([secret]), str({"secret": secret})]


@pytest.mark.parametrize("text", formatted(Secret(VALUE)))
def test_formatting_never_shows_the_value(text):
    assert VALUE not in text and "***" in text


def test_logging_never_shows_the_value(caplog):
    secret = Secret(VALUE)
    with caplog.at_level(logging.INFO, logger="tests.secret"):
        logging.getLogger("tests.secret").info("secret %s and %r", secret, secret)
        logging.getLogger("tests.secret").info(secret)
    assert caplog.records and VALUE not in caplog.text


def test_reveal_gives_the_value():
    secret = Secret(VALUE)
    assert secret.reveal() == VALUE and type(secret.reveal()) is str
    assert secret == VALUE and secret  # still a str: equal to its value, truthy
    assert not Secret("")


def test_holders_of_secrets_never_show_them():
    record = KeyRecord(key="a" * 32, secret=Secret(VALUE), owner_id=1, name="app",
                       description="", auth_type="desktop", callback_url="", enabled=True,
                       always_signed=False, allowed_ips=())
    settings = Settings.from_env({"API_SESSION_SECRET": VALUE})
    assert settings.session_secret.reveal() == VALUE
    for holder in (record, settings):
        assert VALUE not in repr(holder) and VALUE not in f"{holder}"
