"""Request bodies (issue 10): forms are capped at max_form_bytes, only the ``file`` part may use
max_body_bytes, media types are matched in any case, and a refused key stops an upload before
its file part is spooled (docs/protocol-choices.md, "Bounded resources")."""

from __future__ import annotations

import json
import os

import falcon.testing
import pytest

from api.core import transport
from tests.conftest import _multipart

FORM_CAP = 4096


@pytest.fixture
def settings(settings):
    return settings.with_(max_form_bytes=FORM_CAP)


def post(client, body: bytes, content_type: str, query: str = ""):
    return client.simulate_post("/api/test.echo/json", query_string=query, body=body,
                                headers={"Content-Type": content_type})


def code(result) -> int:
    assert result.status_code == 200, result.text[:200]
    return int(result.json["api"].get("code", 0))


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "APPLICATION/X-WWW-FORM-URLENCODED",
                                          "Application/X-Www-Form-Urlencoded; charset=UTF-8"])
def test_urlencoded_in_any_case_and_capped(client, api_key, content_type):
    fits = f"api_key={api_key.key}&echo=" + "a" * (FORM_CAP - 100)
    assert post(client, fits.encode(), content_type).json["echo"] == "a" * (FORM_CAP - 100)
    too_big = fits + "a" * 200
    assert code(post(client, too_big.encode(), content_type)) == 141


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_multipart_in_any_case(client, api_key, case):
    content_type, body = _multipart({"api_key": api_key.key, "echo": "hi"}, {})
    media_type, _, boundary = content_type.partition(";")
    assert post(client, body, case(media_type) + ";" + boundary).json["echo"] == "hi"


def test_multipart_fields_share_the_form_cap_but_the_file_part_does_not(client, api_key):
    big_file = {"file": ("x.bin", b"\xff" * (4 * FORM_CAP))}
    content_type, body = _multipart({"api_key": api_key.key, "echo": "hi"}, big_file)
    assert post(client, body, content_type).json["echo"] == "hi"  # the file part is not capped
    content_type, body = _multipart({"api_key": api_key.key, "echo": "a" * FORM_CAP}, {})
    assert code(post(client, body, content_type)) == 141
    half = "a" * (FORM_CAP // 2 + 10)
    content_type, body = _multipart({"api_key": api_key.key, "echo": half, "other": half}, {})
    assert code(post(client, body, content_type)) == 141
    stray = {"photo": ("x.bin", b"\xff" * (2 * FORM_CAP))}  # not the file part: the form's cap
    content_type, body = _multipart({"api_key": api_key.key, "echo": "hi"}, stray)
    assert code(post(client, body, content_type)) == 141


@pytest.fixture
def spooled(monkeypatch) -> list[str]:
    """Every file part the transport spools."""
    seen: list[str] = []
    spool = transport._spool

    def recording(stream, budget, tmpdir):
        path, size = spool(stream, budget, tmpdir)
        seen.append(path)
        return path, size

    monkeypatch.setattr(transport, "_spool", recording)
    return seen


@pytest.mark.parametrize("where", ["query", "field"])
def test_an_unknown_key_is_refused_before_the_file_part_is_spooled(client, api_key, spooled,
                                                                   where):
    photo = {"file": ("x.jpg", b"\xff" * 50_000)}
    fields = {"echo": "hi"} if where == "query" else {"api_key": "0" * 32, "echo": "hi"}
    content_type, body = _multipart(fields, photo)
    query = "api_key=" + "0" * 32 if where == "query" else ""
    assert code(post(client, body, content_type, query)) == 101
    assert spooled == []
    content_type, body = _multipart({"api_key": api_key.key, "echo": "hi"}, photo)
    assert post(client, body, content_type).json["echo"] == "hi"
    assert len(spooled) == 1  # a known key's file part is spooled as before


def test_a_disabled_key_is_refused_before_the_file_part_is_spooled(client, ctx, api_key,
                                                                   spooled):
    from keys import store

    store.set_enabled(api_key.key, False)
    ctx.keys.invalidate(api_key.key)
    content_type, body = _multipart({"api_key": api_key.key, "echo": "hi"},
                                    {"file": ("x.jpg", b"\xff" * 1000)})
    assert code(post(client, body, content_type)) == 101
    assert spooled == []


def test_no_key_and_no_oauth_before_the_file_part_spools_nothing(client, api_key, spooled):
    """Without api_key, an Authorization: OAuth header or an oauth_* field before the file part,
    step 5 answers 100 whatever follows: the file was spooled all the same."""
    content_type, body = _multipart({"echo": "hi"}, {"file": ("x.jpg", b"\xff" * 50_000)})
    assert code(post(client, body, content_type)) == 100
    assert spooled == []
    content_type, body = _multipart({"oauth_consumer_key": api_key.key, "echo": "hi"},
                                    {"file": ("x.jpg", b"\xff" * 1000)})
    post(client, body, content_type)  # refused by OAuth, after the file part was read
    assert len(spooled) == 1
    client.simulate_post("/api/test.echo/json", body=body, headers={
        "Content-Type": content_type, "Authorization": 'OAuth oauth_consumer_key="x"'})
    assert len(spooled) == 2


@pytest.mark.parametrize("filename", [b'filename="a\x00b.jpg"', b"filename*=UTF-8''a%00b.jpg"])
def test_a_nul_in_a_file_name_is_140(client, api_key, spooled, filename):
    """PostgreSQL cannot store NUL: it was a 500 when the ticket was written."""
    body = (b"--b\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\n"
            + api_key.key.encode() + b"\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; "
            + filename + b"\r\n\r\nxx\r\n--b--\r\n")
    assert code(post(client, body, "multipart/form-data; boundary=b")) == 140
    assert spooled == []


@pytest.mark.parametrize("escaped", [False, True])
def test_more_than_1000_parameters_is_140_on_both_paths(client, api_key, escaped):
    """The unescaped path kept the first 1,000 silently (a later api_key: 100)."""
    pairs = [f"p{n}={'a%20b' if escaped else 'x'}" for n in range(1500)]
    query = "&".join([*pairs, f"api_key={api_key.key}"])
    assert code(client.simulate_get("/api/test.echo/json", query_string=query)) == 140
    assert transport.decode_urlencoded("&".join(pairs[:1000])) is not None


def _spool_files(ctx) -> set[str]:
    return set(os.listdir(ctx.uploads.own_spool()))


def test_a_file_part_whose_type_does_not_decode_leaves_no_spooled_file(client, ctx, api_key):
    """140 for a file part's non-ASCII Content-Type, and nothing left in the spool (it was
    spooled before its type was read, and never removed: a key holder could fill the disk)."""
    boundary = "B0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\n"
            f"{api_key.key}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.jpg\"\r\nContent-Type: image/jpég\r\n\r\n").encode()
    body += b"x" * 5000 + f"\r\n--{boundary}--\r\n".encode()
    before = _spool_files(ctx)
    answer = client.simulate_post("/api/upload.file", body=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert code(answer) == 140
    assert _spool_files(ctx) == before


def test_a_spool_that_fails_midway_leaves_no_file(tmp_path):
    class Failing:
        def __init__(self) -> None:
            self.reads = 0

        def read(self, size: int) -> bytes:
            self.reads += 1
            if self.reads > 2:
                raise OSError("No space left on device")
            return b"x" * 1000

    spool = tmp_path / "spool"
    spool.mkdir()
    with pytest.raises(OSError):
        transport._spool(Failing(), 10_000_000, str(spool))
    assert list(spool.iterdir()) == []


def test_a_body_that_breaks_after_the_file_part_leaves_no_spooled_file(client, ctx, api_key,
                                                                        monkeypatch):
    """The file part spooled, then reading the rest fails with something that is no API error
    (a disk or memory error; waitress hands over whole bodies): a 500, and the spooled file
    removed all the same (the second look's case)."""
    read = transport._read_multipart

    def breaking(req, files, *args):
        read(req, files, *args)
        assert files  # the file part is spooled …
        raise OSError("the disk went away")  # … and then something fails

    monkeypatch.setattr(transport, "_read_multipart", breaking)
    content_type, body = _multipart({"api_key": api_key.key}, {"file": ("a.jpg", b"x" * 5000)})
    before = _spool_files(ctx)
    answer = client.simulate_post("/api/upload.file", body=body,
                                  headers={"Content-Type": content_type})
    assert answer.status_code == 500
    assert _spool_files(ctx) == before


def test_a_multipart_body_without_a_length_is_140_not_500(app, api_key):
    """Only a server other than waitress passes one on (falcon's parser needs a length)."""
    content_type, body = _multipart({"api_key": api_key.key, "echo": "hi"}, {})
    env = falcon.testing.create_environ("/api/test.echo", method="POST", body=body,
                                        headers={"Content-Type": content_type})
    del env["CONTENT_LENGTH"]
    started: list[str] = []
    answer = b"".join(app(env, lambda status, headers: started.append(status)))
    assert started == ["200 OK"] and json.loads(answer)["api"]["code"] == "140"
