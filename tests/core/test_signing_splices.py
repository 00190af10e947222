"""Review of issue 10 (signatures): a slow replay of an HMAC call, MD5 splices through allowed
parameters nothing reads (lg, format, method, callback, api_ts/api_nonce, an upload's text
``file``), and the timestamp window's edges (docs/signing.md)."""

from __future__ import annotations

from typing import Any

import pytest

from api.core.transport import RECEIVED_AT
from api.models.docs import Album
from api.signing import md5
from tests.conftest import _multipart
from tests.core.test_hmac import code, hmac_signed, send
from tests.upload.conftest import jpeg


@pytest.fixture
def short_window(ctx):
    """A 10 s window, 1 s to send headers, 20 s for the body: 2 × window is 20 s."""
    ctx.settings = ctx.settings.with_(hmac_window=10, header_timeout=1.0, body_timeout=20.0)


def test_a_replay_trickled_in_past_twice_the_window_is_still_145(client, api_key, clock,
                                                                  short_window):
    """Begun 9 s after api_ts (inside the window), dispatched 25 s after it: the first use's
    nonce had to outlive 2 × window, or the replay went through."""
    ts = clock()
    values = hmac_signed(api_key, "GET", "/api/test.hello", ts, nonce="slow-replay")
    assert code(send(client, "GET", "/api/test.hello", values)) == "0"
    clock.advance(25)
    replay = send(client, "GET", "/api/test.hello", values, extras={RECEIVED_AT: ts + 9})
    assert code(replay) == "145"


def test_a_call_dispatched_longer_after_its_start_than_a_request_may_arrive_is_144(
        client, api_key, clock, short_window):
    """Header plus body timeout (21 s) after its first byte, a call cannot be trusted to find
    its nonce still kept: refused."""
    ts = clock()
    clock.advance(22)
    values = hmac_signed(api_key, "GET", "/api/test.hello", ts)
    assert code(send(client, "GET", "/api/test.hello", values, extras={RECEIVED_AT: ts})) == "144"
    values = hmac_signed(api_key, "GET", "/api/test.hello", ts)
    assert code(send(client, "GET", "/api/test.hello", values,
                     extras={RECEIVED_AT: ts + 2})) == "0"


@pytest.mark.parametrize("offset, expected", [(-300, "0"), (300, "0"), (-301, "144"),
                                               (301, "144")])
def test_the_window_is_whole_seconds_both_ways(client, api_key, clock, offset, expected):
    """Half a second into a second, floor(now) - 300 passes like floor(now) + 300."""
    clock.advance(0.5)
    values = hmac_signed(api_key, "GET", "/api/test.hello", int(clock()) + offset)
    assert code(send(client, "GET", "/api/test.hello", values)) == expected


# -- MD5 splices through parameters nothing reads ----------------------------------------------

def md5_signed(api_key: Any, method: str, **params: str) -> dict[str, str]:
    values = {"api_key": api_key.key, **params}
    return {**values, "api_sig": md5.signature(values, method, api_key.secret)}


def resend(client: Any, api_key: Any, name: str, captured: dict[str, str],
           changes: dict[str, str] | None = None) -> dict:
    """``captured`` with ``changes``, its api_sig kept (still valid: MD5 concatenates)."""
    sent = {**captured, **(changes or {})}
    unsigned = {name: value for name, value in sent.items() if name != "api_sig"}
    assert md5.verify(unsigned, name, api_key.secret, captured["api_sig"])
    return client.simulate_post(f"/api/{name}/json", params=sent).json


@pytest.mark.parametrize("description, cut", [
    ("Holidays in Bulgaria", {"description": "Holidays in Bu", "lg": "aria"}),
    ("Shot in RAW format, edited", {"description": "Shot in RAW ", "format": ", edited"}),
    ("My method: do not crop", {"description": "My ", "method": ": do not crop"}),
])
def test_a_splice_into_an_unread_parameter_is_146(client, api_key, owner, token_for,
                                                  description, cut):
    captured = md5_signed(api_key, "album.create", auth_token=token_for(owner, doc="write"),
                          title="Summer", description=description)
    answer = resend(client, api_key, "album.create", captured, cut)
    name = next(name for name in cut if name != "description")
    assert (code(answer), answer["api"]["message"]) == ("146", f"Unknown parameter ({name})")
    assert not Album.select().exists()
    assert code(resend(client, api_key, "album.create", captured)) == "0"
    assert Album.get().description == description


@pytest.mark.parametrize("extra", [{"lg": "en"}, {"lg": "fr"}, {"lg": "pt-BR"}, {"lg": "en_GB"},
                                   {"lg": "EN"}, {"lg": ""}, {"lg": "zh-Hant"},
                                   {"format": "json"}, {"format": "JSON"},
                                   {"method": "test.echo"}])
def test_the_same_parameters_of_their_shape_pass(call, extra):
    assert call("test.echo", sign=True, echo="x", **extra)["echo"] == "x"


def test_api_ts_and_api_nonce_are_hmacs_alone(call):
    """On an MD5 call nothing reads them: 146 (api_sig_method beside them makes the call HMAC)."""
    for extra in ({"api_ts": "1764100000"}, {"api_nonce": "abcdefgh"}):
        answer = call("test.echo", sign=True, echo="x", **extra)
        assert answer["api"]["message"] == f"Unknown parameter ({next(iter(extra))})"


def test_method_and_format_sent_beside_the_path_must_name_it(call):
    assert code(call("test.echo", sign=True, echo="x", format="xml")) == "146"
    assert code(call("test.echo", sign=True, echo="x", method="test.hello")) == "146"
    assert call("api.methods.get", sign=True, method="test.echo")["method"]["name"] == (
        "test.echo")  # a method's own parameter named method


def test_callback_on_a_signed_call_only_with_json(call, client, api_key):
    assert 'code="146"' in call.raw("test.echo", "xml", sign=True, echo="x", callback="cb").text
    assert "Unknown parameter (callback)" in call.raw("test.echo", "php", sign=True, echo="x",
                                                      callback="cb").text
    assert call.raw("test.echo", "json", sign=True, echo="x", callback="cb").text == (
        '/**/cb({"echo":"x","api":{"status":"ok"}});')


def test_an_hmac_call_keeps_lg_and_callback_as_they_were(client, api_key, clock):
    """HMAC signs names and values apart: nothing to split, so no shapes beyond 146's rule."""
    values = hmac_signed(api_key, "GET", "/api/test.echo/xml", clock(), echo="x", lg="Deutsch",
                         callback="cb")
    assert b'status="ok"' in client.simulate_get("/api/test.echo/xml", params=values).content
    values = hmac_signed(api_key, "GET", "/api/test.echo/json", clock(), echo="x",
                         format="xml")
    assert code(send(client, "GET", "/api/test.echo/json", values)) == "146"


UPLOAD = {"title": "Me", "description": "My new profile picture", "is_public": "1", "lg": "en"}


def post_upload(client: Any, fields: dict[str, str]) -> dict:
    content_type, body = _multipart(fields, {"file": ("dummy_name", jpeg())})
    return client.simulate_post("/api/upload.file/json", body=body,
                                headers={"Content-Type": content_type}).json


def test_an_upload_split_into_its_text_file_field_is_146(client, api_key, owner, token_for):
    """Photini signs its fields before adding the file part: the description's tail went into
    the text ``file`` field, which nothing reads beside a file part."""
    captured = md5_signed(api_key, "upload.file", auth_token=token_for(owner, doc="write"),
                          **UPLOAD)
    answer = post_upload(client, {**captured, "description": "My new pro", "file": " picture"})
    assert (code(answer), answer["api"]["message"]) == ("146", "Unknown parameter (file)")


@pytest.mark.parametrize("path", ["/home/me/photo 1.jpg", "C:\\Users\\me\\IMG_0001.JPG",
                                  "photo.jpeg"])
def test_an_upload_signing_its_local_path_still_works(client, api_key, owner, token_for, path):
    fields = md5_signed(api_key, "upload.file", auth_token=token_for(owner, doc="write"),
                        file=path, **UPLOAD)
    assert code(post_upload(client, fields)) == "0"
