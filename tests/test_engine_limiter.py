"""AIMD limiter: one halving per 429 episode, slow growth, no shrink on 5xx, rate caps."""

from __future__ import annotations

import asyncio

import pytest

from workbench.core.engine.limiter import FAILED, OK, RATE_LIMITED, AdaptiveLimiter, LimitChange


def make(**kw: object) -> tuple[AdaptiveLimiter, list[LimitChange]]:
    changes: list[LimitChange] = []
    limiter = AdaptiveLimiter(
        ("p", ""),
        on_change=lambda _l, c: changes.append(c),
        **kw,  # type: ignore[arg-type]
    )
    return limiter, changes


async def test_one_halving_per_429_episode() -> None:
    now = [0.0]
    limiter, changes = make(ceiling=16, clock=lambda: now[0], cooldown_s=2.0)
    epochs = [await limiter.acquire() for _ in range(16)]
    for e in epochs:  # sixteen 429s from requests that were all in flight together
        limiter.release(e, RATE_LIMITED)
    assert limiter.limit == 8 and [c.reason for c in changes] == ["429 backoff"]
    # within the cooldown, a 429 on a request started after the back-off (a retry of the
    # burst, a scattered 429) is the same episode
    now[0] = 1.0
    limiter.release(await limiter.acquire(), RATE_LIMITED)
    assert limiter.limit == 8
    # a new episode: a 429 after the cooldown, on a request started after the back-off
    now[0] = 2.5
    e = await limiter.acquire()
    limiter.release(e, RATE_LIMITED)
    assert limiter.limit == 4


async def test_never_below_one_and_no_shrink_on_server_errors() -> None:
    now = [0.0]
    limiter, _ = make(ceiling=4, clock=lambda: now[0])
    for _ in range(5):
        now[0] += 10  # each its own episode
        limiter.release(await limiter.acquire(), RATE_LIMITED)
    assert limiter.limit == 1
    limiter2, changes = make(ceiling=4)
    for _ in range(10):
        limiter2.release(await limiter2.acquire(), FAILED)
    assert limiter2.limit == 4 and changes == []


async def test_additive_growth_after_clean_rounds_up_to_ceiling() -> None:
    limiter, changes = make(ceiling=6, initial=2)
    limiter.release(await limiter.acquire(), OK)
    assert limiter.limit == 2  # one success is not a clean round at limit 2
    limiter.release(await limiter.acquire(), OK)
    assert limiter.limit == 3
    for _ in range(100):
        limiter.release(await limiter.acquire(), OK)
    assert limiter.limit == 6 and all(c.reason == "growth" for c in changes)


async def test_a_burst_of_429s_with_retries_is_one_episode_and_recovery_is_fast() -> None:
    """Requests that got a 429 are retried after their Retry-After: with 8% of them 429s
    the window must not collapse (it did: 112 halvings), and must come back quickly."""
    now = [0.0]
    limiter, changes = make(ceiling=64, clock=lambda: now[0], cooldown_s=2.0)
    for round_ in range(20):  # 20 rounds of 64 requests, 5 of each a 429, 0.1 s apart
        now[0] = round_ * 0.1
        epochs = [await limiter.acquire() for _ in range(limiter.limit)]
        for i, e in enumerate(epochs):
            limiter.release(e, RATE_LIMITED if i % 13 == 0 else OK)
    backoffs = [c for c in changes if c.reason == "429 backoff"]
    assert len(backoffs) == 1  # 2 s of scattered 429s: one episode
    assert limiter.limit == 64  # and the window is back where it was
    assert [c.limit for c in changes if c.reason == "recovery"][-1] == 64


async def test_server_error_resets_the_clean_round() -> None:
    limiter, _ = make(ceiling=6, initial=2)
    limiter.release(await limiter.acquire(), OK)
    limiter.release(await limiter.acquire(), FAILED)
    limiter.release(await limiter.acquire(), OK)
    assert limiter.limit == 2


async def test_slots_are_handed_to_waiters_in_order_and_never_overshoot() -> None:
    limiter, _ = make(ceiling=2, adaptive=False)
    a = await limiter.acquire()
    b = await limiter.acquire()
    order: list[int] = []

    async def wait(i: int) -> None:
        e = await limiter.acquire()
        order.append(i)
        assert limiter.in_flight <= limiter.limit
        limiter.release(e, OK)

    waiters = [asyncio.create_task(wait(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert order == []
    limiter.release(a, OK)
    limiter.release(b, OK)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2] and limiter.in_flight == 0


async def test_set_limit_wakes_waiters_and_cancelled_waiters_free_nothing() -> None:
    limiter, changes = make(ceiling=1)
    held = await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    cancelled = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    limiter.set_limit(2)
    assert await waiter == 0
    assert limiter.in_flight == 2 and changes[-1] == LimitChange(2, "user")
    limiter.release(held, OK)
    assert limiter.in_flight == 1


async def test_rpm_cap_spaces_requests_with_a_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(d: float) -> None:
        slept.append(d)
        now[0] += d

    monkeypatch.setattr("workbench.core.engine.limiter.asyncio.sleep", fake_sleep)
    limiter, _ = make(ceiling=10, rpm=2, clock=lambda: now[0])
    for _ in range(3):
        limiter.release(await limiter.acquire(), OK)
    # two requests fit the bucket; the third waits for one token: 30 s at 2 rpm
    assert slept == [pytest.approx(30.0)]


async def test_tpm_cap_counts_tokens_and_refunds_unused(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(d: float) -> None:
        slept.append(d)
        now[0] += d

    monkeypatch.setattr("workbench.core.engine.limiter.asyncio.sleep", fake_sleep)
    limiter, _ = make(ceiling=10, tpm=600, clock=lambda: now[0])
    limiter.release(await limiter.acquire(500), OK)
    limiter.settle_tokens(500, 100)  # only 100 used: 400 back
    limiter.release(await limiter.acquire(500), OK)
    assert slept == []
    limiter.release(await limiter.acquire(500), OK)
    assert slept and slept[0] == pytest.approx((500 - 0) / 10.0)


def test_backoff_is_longer_for_rate_limits_than_for_other_faults() -> None:
    import random

    from workbench.core.engine import RetryPolicy

    policy, rng = RetryPolicy(), random.Random(0)
    faults = [policy.delay(1, None, rng, rate_limited=False) for _ in range(500)]
    limits = [policy.delay(1, None, rng, rate_limited=True) for _ in range(500)]
    assert max(faults) <= 0.1 < max(limits) <= 0.5
    # Retry-After is a floor either way
    assert policy.delay(1, 1.0, rng, rate_limited=True) >= 1.0
    assert policy.delay(3, None, rng, rate_limited=False) <= 0.4
