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
    (("disable", "f" * 32), "no key"),
])
def test_mistakes_exit_non_zero_with_one_line(keys_cli, args, message):
    keys_cli("user", "add", "bob", "--password", "pw")
    done = keys_cli(*args)
    assert done.returncode != 0
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_password_is_not_stored_in_clear(keys_cli, tmp_path):
    keys_cli("user", "add", "carol", "--password", "hunter2-password")
    assert b"hunter2-password" not in (tmp_path / "cli.sqlite3").read_bytes()
