"""``python -m keys``: scriptable, JSON out, non-zero with one line on stderr for every mistake."""

import json
import subprocess
import sys

import pytest


@pytest.fixture
def keys_cli(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"

    def run(*args: str):
        return subprocess.run([sys.executable, "-m", "keys", *args, "--db", url],
                              capture_output=True, text=True, timeout=60)

    return run


def test_user_key_list_disable_enable(keys_cli):
    added = keys_cli("user", "add", "alice", "--password", "pw", "--realname", "Alice")
    assert added.returncode == 0
    made = keys_cli("create", "--owner", "alice", "--name", "Uploader", "--auth", "web",
                    "--callback", "https://app.example/cb")
    issued = json.loads(made.stdout)
    assert len(issued["api_key"]) == 32 and issued["api_key"] == issued["api_key"].lower()
    assert len(issued["secret"]) == 32
    listed = json.loads(keys_cli("list", "--owner", "alice").stdout)
    assert listed[0]["api_key"] == issued["api_key"] and listed[0]["enabled"] is True
    assert issued["secret"] not in keys_cli("list").stdout  # secrets are printed only once
    assert json.loads(keys_cli("disable", issued["api_key"]).stdout)["enabled"] is False
    assert json.loads(keys_cli("enable", issued["api_key"]).stdout)["enabled"] is True


@pytest.mark.parametrize("args, message", [
    (("create", "--owner", "nobody", "--name", "X"), "no user 'nobody'"),
    (("create", "--owner", "bob", "--name", "X", "--auth", "web", "--callback", "ftp://x"),
     "callback must be an absolute http(s) URL"),
    (("create", "--owner", "bob", "--name", "X", "--auth", "web"), "needs --callback"),
    (("user", "add", "bob", "--password", "pw"), "already exists"),
    # An id would find another member first (/home/<id>); /home/.. is the site's root.
    (("user", "add", "12345", "--password", "pw"), "not be only digits (an id) or only dots"),
    (("user", "add", "..", "--password", "pw"), "not be only digits (an id) or only dots"),
    (("user", "add", ".", "--password", "pw"), "not be only digits (an id) or only dots"),
    (("disable", "f" * 32), "no key"),
    (("user", "close", "nobody"), "no user 'nobody'"),
    (("user", "open", "nobody"), "no user 'nobody'"),
    (("allow", "f" * 32, "10.0.0.0/8"), "no key"),
    (("allow", "f" * 32), "no key"),
])
def test_mistakes_exit_non_zero_with_one_line(keys_cli, args, message):
    keys_cli("user", "add", "bob", "--password", "pw")
    done = keys_cli(*args)
    assert done.returncode != 0
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_password_is_not_stored_in_clear(keys_cli, tmp_path):
    keys_cli("user", "add", "carol", "--password", "hunter2-password")
    assert b"hunter2-password" not in (tmp_path / "cli.sqlite3").read_bytes()


def issued_key(keys_cli, owner: str = "dora") -> str:
    keys_cli("user", "add", owner, "--password", "pw")
    return json.loads(keys_cli("create", "--owner", owner, "--name", "App").stdout)["api_key"]


def test_user_close_and_open(keys_cli):
    keys_cli("user", "add", "erin", "--password", "pw")
    closed = json.loads(keys_cli("user", "close", "erin").stdout)
    assert (closed["username"], closed["status"]) == ("erin", "closed")
    assert json.loads(keys_cli("user", "close", "erin").stdout)["status"] == "closed"  # again: ok
    assert json.loads(keys_cli("user", "open", "erin").stdout)["status"] == "open"


def test_allow_sets_lists_and_clears_the_addresses(keys_cli):
    key = issued_key(keys_cli)
    assert json.loads(keys_cli("allow", key).stdout) == {"api_key": key, "allowed": []}
    done = json.loads(keys_cli("allow", key, "10.1.2.3/8", "192.0.2.7", "2001:DB8::/32",
                               "::1").stdout)
    assert done["allowed"] == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "::1/128"]
    assert json.loads(keys_cli("allow", key).stdout)["allowed"] == done["allowed"]  # just lists
    assert json.loads(keys_cli("list").stdout)[0]["allowed"] == done["allowed"]
    replaced = json.loads(keys_cli("allow", key.upper(), "127.0.0.0/8").stdout)
    assert replaced == {"api_key": key, "allowed": ["127.0.0.0/8"]}  # a new list replaces
    assert json.loads(keys_cli("allow", key, "--clear").stdout)["allowed"] == []


@pytest.mark.parametrize("bad", ["10.0.0.300", "10.0.0.0/33", "example.org", "fe80::1::2",
                                 "", "1.2.3.4/8/8", "fe80::1%eth0/128"])
def test_allow_refuses_what_is_no_address_or_range(keys_cli, bad):
    key = issued_key(keys_cli)
    keys_cli("allow", key, "192.0.2.1")
    done = keys_cli("allow", key, "10.0.0.0/8", bad)
    assert done.returncode == 1
    assert "not an IP address or CIDR range" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert json.loads(keys_cli("allow", key).stdout)["allowed"] == ["192.0.2.1/32"]  # unchanged


@pytest.mark.parametrize("written, stored", [("::ffff:127.0.0.1", "127.0.0.1/32"),
                                             ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
                                             ("2001:db8::/32", "2001:db8::/32")])
def test_an_ipv4_mapped_range_is_stored_as_the_ipv4_range_it_means(written, stored):
    """Clients are matched as IPv4 (a dual-stack socket's ::ffff:a.b.c.d too), so a mapped range
    kept as IPv6 would never match anyone."""
    from keys.store import parse_networks

    assert parse_networks([written]) == [stored]


def test_allow_with_ranges_and_clear_together_is_a_mistake(keys_cli):
    key = issued_key(keys_cli)
    done = keys_cli("allow", key, "10.0.0.0/8", "--clear")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1


def test_closing_and_allowing_with_the_cli_reach_the_running_api(settings, ctx, call, owner,
                                                                 api_key, token_for):
    """108 and 111 without touching the database by hand. The server caches keys for
    API_KEY_CACHE_TTL; ``invalidate`` stands for that time passing."""

    def cli(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "keys", *args,
                               "--db", settings.resolved_database_url],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    token = token_for(owner, doc="read")
    assert call("test.echo", token=token, echo="hi")["echo"] == "hi"
    cli("user", "close", "owner")
    assert call("test.echo", token=token, echo="hi")["api"]["code"] == "108"
    cli("user", "open", "owner")
    assert call("test.echo", token=token, echo="hi")["echo"] == "hi"

    cli("allow", api_key.key, "10.0.0.0/8", "2001:db8::/32")  # the test client is 127.0.0.1
    ctx.keys.invalidate()
    assert call("test.hello")["api"]["code"] == "111"
    cli("allow", api_key.key, "127.0.0.0/8")
    ctx.keys.invalidate()
    assert call("test.hello")["hello"] == "hello world!"
    cli("allow", api_key.key, "--clear")
    ctx.keys.invalidate()
    assert call("test.hello")["hello"] == "hello world!"


@pytest.mark.parametrize("url", ["https://x.example/cb\r\nX: y", "https://exa mple/cb",
                                 "https://user:pw@x.example/cb", "https://x.example/" + "a" * 2048,
                                 "https://x.example/cb#frag", "ftp://x.example/cb", "https:///cb"])
def test_a_callback_must_be_a_plain_absolute_url_that_fits(url):
    from keys.store import KeyStoreError, check_callback

    with pytest.raises(KeyStoreError):
        check_callback(url)
    assert check_callback("https://wall.example/cb?x=1") == "https://wall.example/cb?x=1"


def test_simultaneous_rotations_each_replace_a_different_secret(ctx, owner):
    """On PostgreSQL two rotations used to read the same secret and both keep it as the previous
    one (a secret shown to the owner that signs nothing); the row is now locked while it changes."""
    import threading

    from keys import store
    from keys.db import db

    key = store.create_key(owner, "Racer")
    start, replaced = threading.Barrier(8), []

    def rotate() -> None:
        start.wait()
        with db.connection_context():
            replaced.append(store.rotate_secret(key.key, 600).previous_secret)

    threads = [threading.Thread(target=rotate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(replaced) == 8 and len(set(replaced)) == 8  # every rotation saw the one before


def test_require_hmac_and_legacy_oauth_switch_on_and_off(keys_cli):
    key = issued_key(keys_cli)
    assert json.loads(keys_cli("require-hmac", key, "on").stdout) == {
        "api_key": key, "require_hmac": True}
    assert json.loads(keys_cli("legacy-oauth", key.upper(), "on").stdout) == {
        "api_key": key, "legacy_oauth": True}
    listed = json.loads(keys_cli("list").stdout)[0]
    assert (listed["require_hmac"], listed["legacy_oauth"]) == (True, True)
    assert json.loads(keys_cli("require-hmac", key, "off").stdout)["require_hmac"] is False
    assert json.loads(keys_cli("legacy-oauth", key, "off").stdout)["legacy_oauth"] is False
    assert keys_cli("require-hmac", key, "maybe").returncode == 2  # argparse: on or off only
    for command in ("require-hmac", "legacy-oauth"):
        done = keys_cli(command, "f" * 32, "on")
        assert done.returncode == 1 and "no key" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_ratelimit_sets_prints_and_clears_a_keys_own_limit(keys_cli):
    key = issued_key(keys_cli)
    assert json.loads(keys_cli("ratelimit", key).stdout) == {"api_key": key, "rate_limit": None}
    done = json.loads(keys_cli("ratelimit", key, " 10/second; 5000/hours ").stdout)
    assert done == {"api_key": key, "rate_limit": "10/second;5000/hour"}  # normalised
    assert json.loads(keys_cli("ratelimit", key).stdout) == done  # just prints
    assert json.loads(keys_cli("list").stdout)[0]["rate_limit"] == "10/second;5000/hour"
    assert json.loads(keys_cli("ratelimit", key, "2/5 minutes").stdout)["rate_limit"] == \
        "2/5 minute"
    assert json.loads(keys_cli("ratelimit", key, "--clear").stdout)["rate_limit"] is None


@pytest.mark.parametrize("args, message", [
    (("lots",), "not a rate limit: 'lots'"),
    (("1/second;" * 7 + "1/second",), "at most 64 characters"),
    (("10/hour", "--clear"), "give a LIMIT or --clear, not both"),
])
def test_ratelimit_refuses_what_is_no_limit_and_changes_nothing(keys_cli, args, message):
    key = issued_key(keys_cli)
    keys_cli("ratelimit", key, "3600/hour")
    done = keys_cli("ratelimit", key, *args)
    assert done.returncode == 1 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert json.loads(keys_cli("ratelimit", key).stdout)["rate_limit"] == "3600/hour"
    assert "no key" in keys_cli("ratelimit", "f" * 32, "1/hour").stderr


def test_the_three_settings_are_audited_as_the_cli(keys_cli, tmp_path):
    import sqlite3

    key = issued_key(keys_cli)
    keys_cli("require-hmac", key, "on")
    keys_cli("legacy-oauth", key, "on")
    keys_cli("ratelimit", key, "100/minute")
    keys_cli("ratelimit", key, "100/minute")  # no change: no line
    keys_cli("ratelimit", key, "--clear")
    with sqlite3.connect(tmp_path / "cli.sqlite3") as database:
        lines = database.execute("SELECT actor, action FROM key_audit ORDER BY id").fetchall()
    assert lines[1:] == [("cli", "turned 'require HMAC' on"),
                         ("cli", "turned 'OAuth 1.0 clients' on"),
                         ("cli", "set the rate limit to 100/minute"),
                         ("cli", "set the rate limit to the server's default")]
