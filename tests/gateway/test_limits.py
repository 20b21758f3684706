"""Request weights and bans (``gateway/limits.py``): a client spends its weight per minute,
is refused 429 with the seconds left once over it, banned 418 when it goes on, each ban
twice the last up to the cap; a new minute starts afresh; the memory stays bounded and
never forgets a ban in force."""
from __future__ import annotations

from hypothesis import given, strategies as st

from gateway.limits import RateLimiter, WINDOW_MS, depth_weight

MINUTE = 1_000 * WINDOW_MS        # a window's start, in ms


def test_a_client_over_its_weight_waits_for_the_next_minute():
    limiter = RateLimiter(weight_per_minute=10)
    assert [limiter.spend("1.2.3.4", 4, MINUTE + i).status for i in range(3)] == [200, 200, 429]
    refused = limiter.spend("1.2.3.4", 1, MINUTE + 15_000)
    assert refused.ok and refused.used == 9                                  # a lighter one still fits
    over = limiter.spend("1.2.3.4", 2, MINUTE + 15_000)
    assert (over.status, over.retry_after_s) == (429, 45)
    assert limiter.spend("5.6.7.8", 10, MINUTE + 15_000).ok                  # another client is not charged
    assert limiter.spend("1.2.3.4", 10, MINUTE + WINDOW_MS).ok               # a new minute


def test_a_client_that_keeps_sending_while_refused_is_banned_longer_each_time():
    limiter = RateLimiter(weight_per_minute=1, strikes_to_ban=3, ban_s=120, ban_s_max=400)
    now = MINUTE
    bans = []
    for _ in range(3):
        assert limiter.spend("bot", 1, now).ok
        verdicts = [limiter.spend("bot", 1, now) for _ in range(3)]
        assert [v.status for v in verdicts] == [429, 429, 418]
        bans.append(verdicts[-1].retry_after_s)
        assert limiter.spend("bot", 1, now + bans[-1] * 1000 - 1).status == 418     # banned to the last ms
        now += bans[-1] * 1000 + WINDOW_MS
        now -= now % WINDOW_MS
    assert bans == [120, 240, 400]                                           # doubled, up to the cap


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 50)), max_size=300))
def test_what_a_client_spends_in_a_window_never_passes_its_weight(requests):
    limiter = RateLimiter(weight_per_minute=100, strikes_to_ban=10**9)
    spent: dict[int, int] = {}
    now = MINUTE
    for step, weight in requests:
        now += step * 1_000
        verdict = limiter.spend("x", weight, now)
        window = now // WINDOW_MS
        if verdict.ok:
            spent[window] = spent.get(window, 0) + weight
        else:
            assert spent.get(window, 0) + weight > 100 and verdict.status == 429
        assert spent.get(window, 0) <= 100


def test_the_memory_is_bounded_and_keeps_the_bans_in_force():
    limiter = RateLimiter(weight_per_minute=1, strikes_to_ban=1, tracked_max=3)
    limiter.spend("banned", 1, MINUTE)
    assert limiter.spend("banned", 1, MINUTE).status == 418
    for n in range(10):
        limiter.spend(f"client-{n}", 1, MINUTE + n)
    assert len(limiter) == 3 and limiter.spend("banned", 1, MINUTE + 20).status == 418


def test_a_deeper_book_weighs_more():
    assert [depth_weight(n) for n in (5, 100, 500, 1000, 5000)] == [5, 5, 25, 50, 250]
