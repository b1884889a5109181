"""Issue 24.5: the rate limiter's bucket on a virtual clock. Rounding once left a wait smaller than the clock's
resolution at 2.0 s (1.8e-16 s), which a virtual clock could not move past, so the bucket asked for it again for
ever: the rpm test hung. A bucket books a take as of the moment its room is there, and each take sleeps at most
once."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from evalrun.pacing import Bucket, Pace

SLEEPS_ALLOWED = 10_000  # far more than any schedule here needs: past it the bucket is spinning


class VirtualTime:
    """A clock that moves only when the bucket sleeps; it refuses to spin for ever."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps > SLEEPS_ALLOWED:
            raise AssertionError(f"the bucket keeps asking to sleep {seconds!r} s at {self.now!r}")
        self.now += seconds
        await asyncio.sleep(0)


def _send_all(pace: Pace, count: int, time_: VirtualTime) -> list[float]:
    sent: list[float] = []

    async def one() -> None:
        await pace.request(0)
        sent.append(time_.now)

    async def all_at_once() -> None:
        await asyncio.gather(*(one() for _ in range(count)))

    asyncio.run(all_at_once())
    return sent


@pytest.mark.parametrize("rpm", [600, 7, 61, 3000, 123.4])
def test_rpm_sends_one_second_s_worth_then_one_per_interval_and_each_waits_once(rpm: float) -> None:
    time_ = VirtualTime()
    capacity, rate = max(1.0, rpm / 60), rpm / 60  # the bucket holds one second's worth, at least one request
    burst = int(capacity)  # as many as fit go at once
    count = burst + 40
    sent = _send_all(Pace(rpm, None, time_.clock, time_.sleep), count, time_)
    # a leaky bucket by hand: the k-th after the burst goes once the level has drained to capacity - 1
    expected = [0.0] * burst + [(burst + k - capacity) / rate for k in range(1, count - burst + 1)]
    assert sent == pytest.approx(expected, abs=1e-9)
    assert time_.sleeps <= count - burst


def test_a_wake_up_a_hair_early_takes_no_more_than_the_rate() -> None:
    # a clock that fires timers a little early (asyncio may, by its resolution): still one take per interval
    time_ = VirtualTime()

    async def early(seconds: float) -> None:
        await time_.sleep(seconds * (1 - 1e-9))

    bucket = Bucket(1.0, 10.0, time_.clock, early)
    taken: list[float] = []

    async def takes() -> None:
        for _ in range(50):
            await bucket.take(1)
            taken.append(time_.now)

    asyncio.run(takes())
    assert taken[-1] == pytest.approx(4.9, abs=1e-6)
    assert all(b - a == pytest.approx(0.1, abs=1e-6) for a, b in itertools.pairwise(taken))
