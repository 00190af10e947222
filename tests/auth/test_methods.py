"""auth.getFrob / getToken / checkToken and user.get through the real pipeline (spec §5.3, §5.4)."""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

from PIL import Image

from api.auth import frobs as grantflow
from api.models.grants import Frob
from api.signing import md5
from keys.models import User
from tests.docs.shapes import compare

FROB_TTL = 600


def approve(frob: str, user, **levels: str) -> None:
    """Approve a frob as the authorize page's Allow does."""
    row = Frob.get(Frob.frob == grantflow.token_hash(frob))
    assert grantflow.decide(row, allow=True, user=user,
                            permissions={**dict.fromkeys(grantflow.PERMISSION_AREAS, "none"),
                                         **levels})


def test_flags_match_spec_section_9(ctx):
    flags = {name: (spec.token, spec.sign, spec.post, dict(spec.perms))
             for name in ("auth.getFrob", "auth.getToken", "auth.checkToken", "user.get")
             for spec in [ctx.registry.get(name)]}
    assert flags == {"auth.getFrob": (False, True, False, {}),
                     "auth.getToken": (False, True, False, {}),
                     "auth.checkToken": (True, True, False, {}),
                     "user.get": (False, True, False, {})}


def test_get_frob_shape_and_signature_required(call):
    frob = call("auth.getFrob")["auth"]["frob"]
    assert re.fullmatch(r"\d+-[0-9a-f]{32}", frob)
    assert call("auth.getFrob", sign=False)["api"]["code"] == "104"
    assert call("auth.getFrob", api_sig="0" * 32, sign=False)["api"]["code"] == "105"


def test_frobs_are_stored_hashed(call):
    frob = call("auth.getFrob")["auth"]["frob"]
    assert Frob.get_or_none(Frob.frob == frob) is None
    assert Frob.get_or_none(Frob.frob == grantflow.token_hash(frob)) is not None


def test_get_token_full_answer_and_single_use(call, member):
    frob = call("auth.getFrob")["auth"]["frob"]
    approve(frob, member, doc="write", network="read")
    auth = call("auth.getToken", frob=frob)["auth"]
    assert re.fullmatch(rf"{member.id}-[0-9a-f]{{32}}", auth["token"])
    assert auth["permissions"] == {"doc": "write", "blog": "none", "post": "none",
                                   "network": "read", "profile": "none"}
    assert auth["user"] == {"user_id": str(member.id), "username": "member",
                            "realname": "A Member", "lg": "en", "is_pro": "0"}
    assert "pref" not in auth
    again = call("auth.getToken", frob=frob)
    assert again["api"]["code"] == "2"


def test_get_token_errors(call, member):
    assert call("auth.getToken")["api"]["code"] == "1"
    assert call("auth.getToken", frob="1-nothing")["api"]["code"] == "2"
    unapproved = call("auth.getFrob")["auth"]["frob"]
    assert call("auth.getToken", frob=unapproved)["api"]["code"] == "2"


def test_denied_frob_is_dead(call, member):
    frob = call("auth.getFrob")["auth"]["frob"]
    row = Frob.get(Frob.frob == grantflow.token_hash(frob))
    assert grantflow.decide(row, allow=False, user=member, permissions={})
    assert call("auth.getToken", frob=frob)["api"]["code"] == "2"
    assert not grantflow.decide(row, allow=True, user=member, permissions={})


def test_frob_expires_with_the_injected_clock(call, member, clock, settings):
    assert settings.frob_ttl == FROB_TTL
    frob = call("auth.getFrob")["auth"]["frob"]
    approve(frob, member, doc="read")
    clock.advance(FROB_TTL)
    assert call("auth.getToken", frob=frob)["api"]["code"] == "2"
    fresh = call("auth.getFrob")["auth"]["frob"]
    approve(fresh, member, doc="read")
    clock.advance(FROB_TTL - 1)
    assert call("auth.getToken", frob=fresh)["api"]["status"] == "ok"


def test_frob_of_another_key(call, member, owner):
    from keys import store

    other = store.create_key(owner, "Other app")
    frob = call("auth.getFrob")["auth"]["frob"]
    approve(frob, member, doc="read")
    assert call("auth.getToken", frob=frob, key=other)["api"]["code"] == "2"
    assert call("auth.getToken", frob=frob)["api"]["status"] == "ok"


def test_check_token_and_pref(call, member):
    frob = call("auth.getFrob")["auth"]["frob"]
    approve(frob, member, doc="delete", profile="write")
    token = call("auth.getToken", frob=frob, extra="pref")["auth"]
    assert token["pref"]["lg"] == "en"
    checked = call("auth.checkToken", token=token["token"])["auth"]
    assert checked["token"] == token["token"]
    assert checked["permissions"]["doc"] == "delete"
    assert checked["permissions"]["profile"] == "write"
    assert checked["user"]["username"] == "member"
    assert "pref" not in checked
    assert set(call("auth.checkToken", token=token["token"], extra="pref")["auth"]["pref"]) == {
        "lg", "share", "safety", "license", "perm_comment", "perm_tag", "perm_tagme"}


def test_xml_shape_of_check_token(call, member, token_for):
    token = token_for(member, doc="write")
    body = call.raw("auth.checkToken", "xml", token=token).text
    assert f"<token>{token}</token>" in body
    assert ('<permissions doc="write" blog="none" post="none" network="none" profile="none"/>'
            in body)
    assert f'<user user_id="{member.id}" username="member"' in body


def test_user_get_by_id_and_username(call, member):
    by_id = call("user.get", user_id=member.id)["user"]
    by_name = call("user.get", user_id="member")["user"]
    assert by_id == by_name
    assert by_id["username"] == "member"
    assert by_id["realname"] == "A Member"
    assert by_id["is_closed"] == "0"
    assert by_id["count"] == {"docs": "0", "posts": "0", "network": "0"}
    assert "relation" not in by_id


def test_user_get_errors(call, member):
    assert call("user.get")["api"]["code"] == "1"
    assert call("user.get", user_id="nobody")["api"]["code"] == "1"
    assert call("user.get", user_id="999999")["api"]["code"] == "1"
    assert call("user.get", user_id=member.id, sign=False)["api"]["code"] == "104"


def test_user_get_relation_with_token(call, member, owner, token_for):
    from api.models.docs import Relation

    Relation.create(user=owner, contact=member, is_friend=True)
    token = token_for(owner)
    user = call("user.get", user_id=member.id, token=token)["user"]
    assert user["relation"] == {"isfamily": "0", "isfriend": "1", "iscontact": "1",
                                "revfamily": "0", "revfriend": "0", "revcontact": "0"}


def test_user_get_shape_and_what_live_clients_read(call, client, member, owner, token_for):
    """Photini downloads ``icon`` right after log-in; python-ipernity-api reads
    ``dates.member_since``; the Go kit decodes ``location`` and ``dates``."""
    token = token_for(owner)
    xml = call.raw("user.get", "xml", user_id=member.id, token=token).content
    # Members have no place yet, so the example's coordinates are left out (location is empty).
    compare("user.get", xml, added={"user/dates", "user/dates@member_since"},
            absent={"user/location@lat", "user/location@lng"})
    user = call("user.get", user_id=member.id, token=token)["user"]
    assert user["location"] == {"country": "", "town": ""}
    assert user["dates"] == {"member_since": str(User.get_by_id(member.id).created_at)}
    assert user["is_pro"] == "0" and user["alias"] == "member"
    icon = urlsplit(user["icon"])
    assert icon.path == "/media/icons/default.png"
    got = client.simulate_get(icon.path)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert "max-age=" in got.headers["cache-control"] and "public" in got.headers["cache-control"]
    with Image.open(io.BytesIO(got.content)) as picture:
        picture.verify()
        assert (picture.format, picture.size) == ("PNG", (64, 64))
    head = client.simulate_head(icon.path)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(got.content))
    assert call("user.get", user_id=owner.id)["user"]["icon"] == user["icon"]  # one for all


def test_authorization_link_signature_vector():
    # Spec §4.2 vector 2: the link is signed with no method name.
    params = {"api_key": "6fa87ba500002712bd4eed6020f3bd72", "perm_network": "read"}
    assert md5.signature(params, None, "e9a599f0cf6ce193") == "da183021cd39461108770b822fcd9398"


def test_user_get_without_user_id_is_the_tokens_user(call, member, owner, token_for):
    """Clients ask for their own card without user_id (issue 7); user.get's token is optional."""
    me = call("user.get", token=token_for(member))["user"]
    assert (me["username"], me["user_id"]) == ("member", str(member.id))
    assert call("user.get", token=token_for(owner), user_id=" ")["user"]["username"] == "owner"
    assert call("user.get", token=token_for(owner), user_id="member")["user"][
        "username"] == "member"  # an explicit user_id still wins
    assert call("user.get")["api"]["code"] == "1"  # neither token nor user_id
    params = call("api.methods.get", method="user.get")["method"]["parameters"]
    user_id = next(p for p in params if p["name"] == "user_id")
    assert user_id.get("required", "0") == "0" and "authenticated user" in user_id["value"]
