"""The session secret (api/web/accounts.py): made once, whole and private, however many processes
start together on one data dir; a short or empty one is refused, and serve.py says so."""

from __future__ import annotations

import errno
import multiprocessing
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from api.config import Settings
from api.server import main as serve_main
from api.web.accounts import MIN_SESSION_SECRET, SecretRefused, session_secret
from keys.secret import Secret

ROUNDS, PROCESSES = 3, 150  # the code before the fix: different or empty secrets in most rounds


def _first_start(data_dir: str, barrier, results) -> None:
    barrier.wait()
    try:
        results.put(session_secret(Settings(data_dir=data_dir)).decode())
    except Exception as error:  # reported by the assertion
        results.put(f"error: {error!r}")


def _start_together(data_dir: Path, count: int) -> list[str]:
    """The secrets (or errors) ``count`` forked processes starting at once read."""
    fork = multiprocessing.get_context("fork")
    barrier, results = fork.Barrier(count), fork.Queue()
    processes = [fork.Process(target=_first_start, args=(str(data_dir), barrier, results))
                 for _ in range(count)]
    for process in processes:
        process.start()
    found = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return found


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_simultaneous_first_starts_end_with_one_secret(tmp_path, round_):
    """The issue saw 60 of 300 such starts end with different or empty secrets."""
    secrets = _start_together(tmp_path, PROCESSES)
    assert len(set(secrets)) == 1 and len(secrets[0]) == 64, set(secrets)
    path = tmp_path / "session_secret"
    assert path.read_text() == secrets[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["session_secret"]  # no temp file left


def test_a_configured_secret_is_used_and_a_short_one_refused(tmp_path):
    good = "s" * MIN_SESSION_SECRET
    assert session_secret(Settings(data_dir=str(tmp_path), session_secret=Secret(good))) == (
        good.encode())
    with pytest.raises(SecretRefused, match=f"31 characters, fewer than {MIN_SESSION_SECRET}"):
        session_secret(Settings(data_dir=str(tmp_path), session_secret=Secret(good[1:])))
    assert not (tmp_path / "session_secret").exists()


@pytest.mark.parametrize("content", ["", "\n", "abc123"])
def test_an_empty_or_short_secret_file_is_refused(tmp_path, content):
    (tmp_path / "session_secret").write_text(content)
    with pytest.raises(SecretRefused, match="remove it"):
        session_secret(Settings(data_dir=str(tmp_path)))


def test_serve_refuses_a_short_secret_in_one_line(settings, monkeypatch, capsys):
    monkeypatch.setenv("API_SESSION_SECRET", "too-short")
    assert serve_main(["--db", settings.database_url, "--data-dir", settings.data_dir,
                       "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after any log lines of the start
    assert err == (f"error: not starting: API_SESSION_SECRET has 9 characters, fewer than "
                   f"{MIN_SESSION_SECRET}")
    assert "too-short" not in err
    assert not Path(settings.data_dir, "session_secret").exists()


def test_serve_refuses_bad_trusted_proxies_in_one_line(settings, monkeypatch, capsys):
    monkeypatch.setenv("API_SESSION_SECRET", "s" * MIN_SESSION_SECRET)
    monkeypatch.setenv("API_TRUSTED_PROXIES", "10.0.0.0/8, nonsense")
    assert serve_main(["--db", settings.database_url, "--data-dir", settings.data_dir,
                       "--port", "1"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: not starting: API_TRUSTED_PROXIES: not an address or CIDR range: 'nonsense'")


def _no_hard_links(source, target):
    raise PermissionError(errno.EPERM, "Operation not permitted")


def test_without_hard_links_the_secret_is_still_made_once(tmp_path, monkeypatch):
    """Some network and FUSE file systems refuse os.link: created in place, readers wait."""
    monkeypatch.setattr(os, "link", _no_hard_links)  # the forked processes inherit it
    made = _start_together(tmp_path, 40)
    with ThreadPoolExecutor(8) as threads:
        again = list(threads.map(lambda _: session_secret(Settings(data_dir=str(tmp_path))),
                                 range(8)))
    assert len(set(made)) == 1 and len(made[0]) == 64, set(made)
    assert {value.decode() for value in again} == set(made)
    path = tmp_path / "session_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["session_secret"]


def test_threads_racing_without_hard_links_agree(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "link", _no_hard_links)
    barrier = threading.Barrier(16)

    def start(_: int) -> bytes:
        barrier.wait()
        return session_secret(Settings(data_dir=str(tmp_path)))

    with ThreadPoolExecutor(16) as threads:
        assert len(set(threads.map(start, range(16)))) == 1


def test_a_secret_that_cannot_be_made_says_to_set_one(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "link", _no_hard_links)
    real_open = os.open

    def refusing_open(path, flags, mode=0o777, **kwargs):
        if str(path).endswith("session_secret"):
            raise OSError(errno.ENOTSUP, "Operation not supported")
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(SecretRefused, match=r"cannot create .*session_secret \(Operation not "
                                            r"supported\): set API_SESSION_SECRET"):
        session_secret(Settings(data_dir=str(tmp_path)))
    assert [p.name for p in tmp_path.iterdir()] == []
