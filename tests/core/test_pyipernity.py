"""PyIpernity 0.3.1 from PyPI, pointed at our base URL, against a real waitress server."""

import pytest
from ipernity import IpernityAPI
from ipernity.exceptions import APIRequestError

from keys import store
from tests.docs.conftest import make_doc  # noqa: F401 (the fixture, shared as is)


@pytest.fixture
def client_api(live_server, api_key):
    return IpernityAPI(api_key.key, api_key.secret, url=live_server.base_url + "/api/")


def test_hello_and_echo(client_api):
    assert client_api.test.hello()["hello"] == "hello world!"
    assert client_api.test.echo(echo="Hallo Echo!")["echo"] == "Hallo Echo!"
    assert client_api.test.echo(echo="Grüße 😀")["echo"] == "Grüße 😀"


def test_reflection(client_api):
    methods = client_api.api.methods.getList()["methods"]["method"]
    assert {"test.hello", "test.echo", "api.methods.get"} <= {m["name"] for m in methods}
    assert client_api.api.methods.get(method="test.echo")["method"]["name"] == "test.echo"


def test_errors_carry_our_codes(client_api, live_server, api_key, ctx):
    with pytest.raises(APIRequestError) as caught:
        client_api.test.echo(echo="")
    assert caught.value.code == 1
    with pytest.raises(APIRequestError) as caught:
        client_api.api.methods.get(method="no.such")
    assert caught.value.code == 1

    wrong = IpernityAPI(api_key.key, "0" * 32, url=live_server.base_url + "/api/")
    with pytest.raises(APIRequestError) as caught:
        wrong.test.hello()
    assert caught.value.code == 105

    store.set_enabled(api_key.key, False)
    ctx.keys.invalidate(api_key.key)
    with pytest.raises(APIRequestError) as caught:
        client_api.test.hello()
    assert caught.value.code == 101


def test_own_lists_without_user_id_and_per_page_500(live_server, api_key, owner, token_for,
                                                    make_doc):  # noqa: F811
    """Issue 7: what the live service allowed and PyIpernity callers rely on."""
    made = {make_doc(owner).id for _ in range(130)}
    api = IpernityAPI(api_key.key, api_key.secret, token=token_for(owner, doc="read"),
                      url=live_server.base_url + "/api/")
    walked = list(api.walk_data("doc.getList", per_page=500))  # lowered to 100: two pages
    assert {int(doc["doc_id"]) for doc in walked} == made and len(walked) == 130
    docs = api.doc.getList()["docs"]
    assert (docs["total"], docs["per_page"], docs["pages"]) == ("130", "20", "7")
    me = api.user.get()["user"]
    assert (me["username"], me["user_id"]) == ("owner", str(owner.id))
    assert api.album.getList(empty=True)["albums"]["total"] == "0"  # sent as "True"
    assert api.album.getList(empty=False, per_page=1000)["albums"]["per_page"] == "100"
