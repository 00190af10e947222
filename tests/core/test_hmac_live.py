"""HMAC-SHA256 against a real waitress server on the real clock: a multipart upload trickled for
longer than the window is judged by when it began to arrive (issue 10: "the timestamp is checked
when the request starts"), and the 20-line client of docs/signing.md runs as printed."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from waitress.server import create_server

from api.models.docs import Doc
from api.server import serve_until
from api.signing import hmac as hmac_sig
from tests.conftest import LiveServer, free_port
from tests.docs.conftest import make_doc  # noqa: F401 (the fixture, shared as is)
from tests.upload.conftest import jpeg

WINDOW = 2  # seconds; the upload below takes longer than that to arrive
TRICKLE_SECONDS = WINDOW + 1.5
BOUNDARY = "----hmacslowupload"
SIGNING_DOC = Path(__file__).resolve().parents[2] / "docs" / "signing.md"


@pytest.fixture
def clock():
    """The real clock: waitress stamps arrivals with it."""
    return time.time


@pytest.fixture
def settings(settings):
    return settings.with_(hmac_window=WINDOW)


def multipart_upload(api_key, token: str) -> bytes:
    """upload.file's multipart body, HMAC-signed now, with the text field ``file`` as
    ipernity-api sends it and the file part (not signed) after it."""
    fields = {"api_key": api_key.key, "auth_token": token, "title": "Slow but signed",
              "file": "/home/me/slow.jpg", "api_sig_method": "hmac-sha256",
              "api_ts": str(int(time.time())), "api_nonce": "slow-upload-1"}
    fields["api_sig"] = hmac_sig.signature("POST", "/api/upload.file/json", fields,
                                           api_key.secret)
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             .encode() for name, value in fields.items()]
    parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="slow.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                 + jpeg(64, 48) + b"\r\n")
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def trickle(port: int, body: bytes) -> dict:
    """POST ``body`` in small pieces spread over TRICKLE_SECONDS; the JSON answer."""
    head = (f"POST /api/upload.file/json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    pieces = [body[i:i + 512] for i in range(0, len(body), 512)]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for piece in pieces:
            time.sleep(TRICKLE_SECONDS / len(pieces))
            sock.sendall(piece)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return json.loads(reply.partition(b"\r\n\r\n")[2])


def test_a_slow_upload_signed_at_its_start_succeeds(app, api_key, owner, token_for):
    started = time.monotonic()
    with LiveServer(app) as live:  # stamped, as serve.py runs it
        answer = trickle(live.port, multipart_upload(api_key, token_for(owner, doc="write")))
    assert time.monotonic() - started > WINDOW + 1  # it did arrive after the window
    assert answer["api"]["status"] == "ok", answer
    assert answer["ticket"]


def test_without_the_arrival_stamp_the_same_upload_would_be_144(app, api_key, owner,
                                                                token_for):
    """The control: waitress alone calls the app when the body is complete, too late."""
    port = free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=2)
    stop = threading.Event()
    thread = threading.Thread(target=serve_until, args=(server, stop), kwargs={"grace": 5},
                              daemon=True)
    thread.start()
    try:
        answer = trickle(port, multipart_upload(api_key, token_for(owner, doc="write")))
    finally:
        stop.set()
        thread.join(timeout=10)
    assert answer["api"]["code"] == "144"
    assert re.fullmatch(r"Timestamp out of range \(server time \d{10}\)", answer["api"]["message"])


def client_snippet() -> dict:
    """The Python block of docs/signing.md, executed; its names."""
    text = SIGNING_DOC.read_text()
    block = text.split("## A client in 20 lines", 1)[1].split("```python\n", 1)[1].split("```")[0]
    assert len(block.strip().splitlines()) <= 20
    names: dict = {}
    exec(compile(block, str(SIGNING_DOC), "exec"), names)
    return names


def test_the_documented_client_runs(live_server, api_key, owner, token_for,
                                    make_doc):  # noqa: F811
    call = client_snippet()["call"]
    base, key, secret = live_server.base_url, api_key.key, api_key.secret
    assert call(base, key, secret, "test.echo", echo="Grüße & 100% ~+")["echo"] == (
        "Grüße & 100% ~+")
    doc = make_doc(owner, title="Before")
    answer = call(base, key, secret, "doc.set", auth_token=token_for(owner, doc="write"),
                  doc_id=doc.id, title="Sunset over the zoo")
    assert answer["doc"]["title"] == "Sunset over the zoo"
    assert Doc.get_by_id(doc.id).title == "Sunset over the zoo"
    assert call(base, key, "0" * 32, "test.hello")["api"]["code"] == "105"
