"""Parallel wrong passwords for one account cannot all slip under the throttle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from api.web.accounts import MAX_FAILURES_PER_ACCOUNT, Accounts, Refused
from keys import store


def test_parallel_guesses_are_counted_one_at_a_time(ctx, clock):
    store.add_user("target", "the-right-password")
    accounts = Accounts(b"s" * 32, clock)

    def guess(n: int) -> str:
        try:
            accounts.login("target", f"wrong-{n}", f"10.0.0.{n}")
        except Refused as refused:
            return str(refused)
        return "logged in"

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(guess, range(12)))
    wrong = [a for a in answers if a.startswith("Wrong")]
    throttled = [a for a in answers if a.startswith("Too many")]
    assert len(wrong) == MAX_FAILURES_PER_ACCOUNT
    assert len(throttled) == 12 - MAX_FAILURES_PER_ACCOUNT
