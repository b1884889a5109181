"""Rate limits: a model's requests per minute and tokens per minute, each paced by a leaky bucket
that waits for room rather than refusing (the runner's workers take from it before every attempt).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Bucket:
    """A leaky bucket: holds up to `capacity`, drains at `rate` per second; `take` waits for room.

    The clock and the sleep are injectable so a test can run it on virtual time. Takers wait in turn
    (a FIFO lock), so a large take is not starved by small ones.
    """

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.capacity, self.rate, self.clock, self.sleep = capacity, rate, clock, sleep
        self.level = 0.0
        self.last = clock()
        self._turn = asyncio.Lock()

    async def take(self, amount: float) -> None:
        async with self._turn:
            self._drain(self.clock())
            wait = (self.level + amount - self.capacity) / self.rate
            if wait > 0:
                await self.sleep(wait)
                # booked as of the moment the room was there, not looked for again on waking: read again, the
                # clock's rounding could leave a hair too little room, then a wait below the clock's resolution,
                # and a virtual clock that such a wait cannot move would be asked again for ever
                self._drain(max(self.clock(), self.last + wait))
            self.level += amount

    def _drain(self, now: float) -> None:
        # a wake-up booked ahead of a clock that fired its timer a little early must not refill the bucket
        self.level = max(0.0, self.level - max(0.0, now - self.last) * self.rate)
        self.last = max(self.last, now)


class Pace:
    """A model's rate limits: requests per minute and tokens per minute, each a leaky bucket.

    Each bucket holds one second's worth (at least one request or token): providers often enforce
    a per-minute limit over short windows (60,000 rpm as 1,000 per second), so a bucket the size of a
    whole minute would burst into 429s at the start. A request with more tokens than one second's
    worth takes the bucket as many times as it needs, so the average rate still holds.
    """

    def __init__(self, rpm: float | None, tpm: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.requests = _bucket(rpm, clock, sleep)
        self.tokens = _bucket(tpm, clock, sleep)

    async def request(self, tokens: int) -> None:
        if self.requests is not None:
            await self.requests.take(1)
        await self.spend(tokens)

    async def spend(self, tokens: float) -> None:
        if self.tokens is None:
            return
        while tokens > 0:
            take = min(tokens, self.tokens.capacity)
            await self.tokens.take(take)
            tokens -= take


def _bucket(per_minute: float | None, clock: Callable[[], float],
            sleep: Callable[[float], Awaitable[object]]) -> Bucket | None:
    if not per_minute:
        return None
    return Bucket(max(1.0, per_minute / 60), per_minute / 60, clock, sleep)
