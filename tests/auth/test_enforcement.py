"""Token enforcement in the pipeline (spec §5.1, §5.2): codes 106, 107, 108 and 110."""

from __future__ import annotations

import dataclasses
import json

import pytest

from api.core.context import Call
from api.core.dispatch import ApiRequest, Dispatcher
from api.core.registry import MethodGroup, Registry
from api.methods import GROUPS
from api.signing import md5
from keys import store
from keys.models import User

probe = MethodGroup()


@probe.method("probe.write", title="Needs doc:write.", token=True, sign=True,
              perms={"doc": "write"})
def probe_write(call: Call) -> dict:
    """A token method that names a permission."""
    return {"who": {"user_id": call.user.id}}


@probe.method("probe.widen", title="Token optional, names doc:read.", sign=True,
              perms={"doc": "read"})
def probe_widen(call: Call) -> dict:
    """A token=0 method whose permission only widens what the caller sees (spec §5.1)."""
    return {"view": {"private": call.allows("doc", "read")}}


@pytest.fixture
def dispatch(ctx, api_key):
    """Run one signed call through a pipeline whose registry also holds the probe methods."""
    dispatcher = Dispatcher(dataclasses.replace(
        ctx, registry=Registry.from_groups((*GROUPS, probe))))

    def run(method: str, *, token: str | None = None, key=None) -> dict:
        key = key or api_key
        params = {"api_key": key.key}
        if token is not None:
            params["auth_token"] = token
        params["api_sig"] = md5.signature(params, method, key.secret)
        reply = dispatcher.handle(ApiRequest(http_method="GET", method_name=method,
                                             format_name="json", params=params))
        return json.loads(reply.body)

    return run


def test_106_token_missing(dispatch, call):
    assert dispatch("probe.write")["api"]["code"] == "106"
    assert call("auth.checkToken")["api"]["code"] == "106"


def test_107_unknown_token(dispatch, call):
    assert dispatch("probe.write", token="1-" + "0" * 32)["api"]["code"] == "107"
    assert call("auth.checkToken", token="garbage é")["api"]["code"] == "107"


def test_107_token_sent_with_another_key(dispatch, call, member, owner, token_for):
    token = token_for(member, doc="write")
    other = store.create_key(owner, "Another app")
    assert dispatch("probe.write", token=token, key=other)["api"]["code"] == "107"
    assert call("auth.checkToken", token=token, key=other)["api"]["code"] == "107"
    assert dispatch("probe.write", token=token)["api"]["status"] == "ok"


def test_108_closed_account_on_every_token_call(dispatch, call, member, token_for):
    token = token_for(member, doc="write")
    User.update(status="closed").where(User.id == member.id).execute()
    assert dispatch("probe.write", token=token)["api"]["code"] == "108"
    assert dispatch("probe.widen", token=token)["api"]["code"] == "108"
    assert call("auth.checkToken", token=token)["api"]["code"] == "108"
    assert call("user.get", user_id=member.id, token=token)["api"]["code"] == "108"
    assert call("user.get", user_id=member.id)["user"]["is_closed"] == "1"


@pytest.mark.parametrize("level, code", [("none", 110), ("read", 110), ("write", 0),
                                         ("delete", 0)])
def test_110_below_the_required_level(dispatch, member, token_for, level, code):
    answer = dispatch("probe.write", token=token_for(member, doc=level))
    assert answer["api"].get("code", "0") == str(code)
    if code == 0:
        assert answer["who"]["user_id"] == str(member.id)


def test_110_checks_only_the_named_area(dispatch, member, token_for):
    token = token_for(member, blog="delete", network="delete", profile="write")
    assert dispatch("probe.write", token=token)["api"]["code"] == "110"


def test_token_only_widens_on_token_zero_methods(dispatch, member, token_for):
    assert dispatch("probe.widen")["view"]["private"] == "0"
    assert dispatch("probe.widen", token=token_for(member))["view"]["private"] == "0"
    assert dispatch("probe.widen", token=token_for(member, doc="read"))["view"]["private"] == "1"


def test_token_requires_a_signature(call, member, token_for):
    token = token_for(member)
    assert call("user.get", user_id=member.id, token=token, sign=False)["api"]["code"] == "104"


def test_tokens_are_stored_hashed(member, token_for):
    from api.models.grants import Token

    token = token_for(member)
    assert Token.get_or_none(Token.token_hash == token) is None
    assert len(token.split("-", 1)[1]) * 4 >= 128
