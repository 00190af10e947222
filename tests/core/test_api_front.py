"""ApiFront (api/app.py): REST API calls answered without falcon, everything else through it.

What falcon's routing and middleware did for an API call must hold on the front's path too: the
same routes (one trailing slash ignored, the envelopes' paths left to falcon), other HTTP methods
answered by falcon, a request id and JSON line, the database connection given back, and a 500
without a traceback or the query string when something the pipeline does not answer fails.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging

import falcon.testing
import pytest

from api.app import api_route, create_app
from api.core import transport
from api.runtime.http_log import JsonAccessLog
from keys.db import db


@pytest.mark.parametrize(("path", "route"), [
    ("/api", (None, None, "/api")),
    ("/api/", (None, None, "/api")),
    ("/api/test.hello", ("test.hello", None, "/api/{method}")),
    ("/api/test.hello/", ("test.hello", None, "/api/{method}")),
    ("/api/test.hello/xml", ("test.hello", "xml", "/api/{method}/{fmt}")),
    ("/api/test.hello/xml/", ("test.hello", "xml", "/api/{method}/{fmt}")),
    ("/api/xmlrpc", None), ("/api/soap", None), ("/api/soap/json", None),  # the envelopes'
    ("/apix", None), ("/api2/test.hello", None), ("/", None), ("/media/x", None),
    ("/api//test.hello", None), ("/api/test.hello//", None), ("/api/a/b/c", None),
    ("/api/test.hello/xml/extra", None),
])
def test_routes_are_falcons(path, route):
    assert api_route(path) == route


def test_the_front_answers_what_falcon_answered(client, api_key):
    for path in ("/api/test.hello", "/api/test.hello/", "/api/test.hello/xml"):
        answer = client.simulate_get(path, params={"api_key": api_key.key})
        assert answer.status_code == 200
        assert answer.headers["Content-Length"] == str(len(answer.content))
        assert "RateLimit" in answer.headers and "X-RateLimit-Remaining" in answer.headers
    assert "<api status=\"ok\">" in answer.text
    answer = client.simulate_post("/api", params={"method": "test.hello",
                                                  "api_key": api_key.key})
    assert answer.json["hello"] == "hello world!"
    answer = client.simulate_get("/api/test.hello/nope", params={"api_key": api_key.key})
    assert answer.json["api"]["code"] == "102"


@pytest.mark.parametrize("http_method", ["HEAD", "PUT", "DELETE", "PATCH"])
def test_other_http_methods_get_falcons_405(client, api_key, http_method):
    answer = client.simulate_request(http_method, "/api/test.hello",
                                     params={"api_key": api_key.key})
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_options_and_envelopes_still_go_through_falcon(client):
    assert client.simulate_options("/api/test.hello").status_code == 200
    wsdl = client.simulate_get("/api/soap", query_string="wsdl")
    assert wsdl.status_code == 200 and "definitions" in wsdl.text


def test_a_content_length_that_is_no_number_is_the_envelope_140(app, api_key):
    # waitress refuses such a request itself; another server might pass it on (falcon's
    # TestClient validates the environ, so the front is called directly)
    env = falcon.testing.create_environ(
        "/api/test.hello", method="POST", query_string=f"api_key={api_key.key}", body=b"a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    env["CONTENT_LENGTH"] = "12abc"
    started = []
    body = b"".join(app(env, lambda status, headers: started.append(status)))
    assert started == ["200 OK"] and json.loads(body)["api"]["code"] == "140"


def test_the_connection_is_given_back_after_a_call(client, api_key):
    answer = client.simulate_get("/api/test.echo", params={"api_key": api_key.key, "x": "1"})
    assert answer.status_code == 200
    assert db.is_closed()


def test_an_unexpected_failure_is_a_500_without_path_or_query(client, api_key, monkeypatch,
                                                              caplog):
    def broken(*args, **kwargs):
        raise OSError(message)  # not written out here: the traceback quotes this line

    message = "disk full at " + "/secret" + "/path"

    monkeypatch.setattr("api.app.read_request", broken)
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        answer = client.simulate_get("/api/test.hello",
                                     params={"api_key": api_key.key, "auth_token": "tok-123"})
    assert answer.status_code == 500
    assert answer.json == {"title": "500 Internal Server Error"}
    assert answer.headers["Cache-Control"] == "no-store"
    assert "OSError" in caplog.text and "/api/{method}" in caplog.text
    for leaked in ("tok-123", "/secret/path", api_key.key, "test.hello"):
        assert leaked not in caplog.text
    assert db.is_closed()


def test_json_mode_ids_and_lines_for_front_calls(settings, ctx, api_key, monkeypatch):
    stream = io.StringIO()
    json_ctx = dataclasses.replace(ctx, access_log=JsonAccessLog(stream, clock=ctx.clock))
    client = falcon.testing.TestClient(create_app(settings.with_(log_format="json"),
                                                  ctx=json_ctx))
    sent = client.simulate_get("/api/test.hello/xml", params={"api_key": api_key.key},
                               headers={"X-Request-Id": "abc-123"})
    made = client.simulate_get("/api/test.hello", params={"api_key": api_key.key})
    monkeypatch.setattr(transport, "decode_urlencoded", _raise_runtime)
    failed = client.simulate_get("/api/test.hello", params={"api_key": api_key.key})
    assert sent.headers["X-Request-Id"] == "abc-123"
    assert made.headers["X-Request-Id"] and made.headers["X-Request-Id"] != "abc-123"
    assert failed.status_code == 500 and failed.headers["X-Request-Id"]
    json_ctx.access_log.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["request_id"], line["route"], line["status"], line["bytes"])
            for line in lines] == [
        ("abc-123", "/api/{method}/{fmt}", 200, len(sent.content)),
        (made.headers["X-Request-Id"], "/api/{method}", 200, len(made.content)),
        (failed.headers["X-Request-Id"], "/api/{method}", 500, len(failed.content))]
    assert lines[0]["api_method"] == "test.hello" and lines[0]["format"] == "xml"
    assert "api_method" not in lines[2]  # the pipeline never ran


def _raise_runtime(*args, **kwargs):
    raise RuntimeError("boom")


def test_the_front_answers_as_the_falcon_app_it_wraps(app, api_key):
    """The same calls through the front and through the inner falcon app alone (what answered
    them before): status, headers and body alike, an empty Host header included (falcon takes
    it as it is; the links then start ``http:///``)."""
    cases = [("/api/test.hello/xml/", "GET", f"api_key={api_key.key}", {}),
             ("/api/api.methods.getList", "GET", f"api_key={api_key.key}", {"Host": ""}),
             ("/api", "POST", f"method=test.echo&api_key={api_key.key}&x=%C3%A9", {}),
             ("/api/test.hello", "GET", "api_key=nope&callback=f", {})]
    for path, http_method, query, headers in cases:
        answers = []
        for wsgi in (app, app.app):
            env = falcon.testing.create_environ(path, method=http_method, query_string=query,
                                                headers=headers)
            if "Host" in headers:
                env["HTTP_HOST"] = headers["Host"]
            answers.append(_answer(wsgi, env))
        assert answers[0] == answers[1], path


def _answer(wsgi, env) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers (lower-case names, those each call changes left out) and body."""
    started = []
    body = b"".join(wsgi(env, lambda status, sent: started.append((status, sent))))
    status, sent = started[0]
    return status, sorted((name.lower(), value) for name, value in sent
                          if name.lower() not in _VOLATILE), body


_VOLATILE = {"ratelimit", "x-ratelimit-remaining", "x-ratelimit-reset"}  # spent by each call
