"""Time for the engine: real or scaled clocks, and a client-side token bucket.

The engine never calls `time` directly: it gets a Clock, so tests and the benchmark can run
it against a simulated AWS whose seconds pass faster than real ones (see simulator.py).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch, and a way to wait in the same unit."""

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock last in real time (for blocking waits)."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def real_seconds(self, seconds: float) -> float:
        return max(0.0, seconds)


class ScaledClock:
    """A clock that runs `scale` times faster than real time, starting at `start`.

    Everything measured on it is real wall time multiplied by `scale`, so engine overhead is
    counted honestly (and magnified by the same factor as the simulated waits shrink).
    """

    def __init__(self, scale: float, start: float = 1_700_000_000.0) -> None:
        if scale <= 0:
            raise ValueError(f"scale: {scale} must be positive")
        self.scale = scale
        self._start = start
        self._origin = time.monotonic()

    def time(self) -> float:
        return self._start + (time.monotonic() - self._origin) * self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.scale)

    def real_seconds(self, seconds: float) -> float:
        return max(0.0, seconds / self.scale)


class TokenBucket:
    """Thread-safe token bucket: `burst` tokens, refilled at `rate` per clock second.

    `acquire` blocks until a token is free, so callers are paced to the API's rate instead
    of being throttled and retried blindly.
    """

    MIN_RATE = 0.01  # never slower than one call per 100 s

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate {rate} must be positive and burst {burst} at least 1")
        self.rate = rate
        self.max_rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock.time()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Take a token if one is free now."""
        with self._lock:
            self._refill(self._clock.time())
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def acquire(self, cancelled: threading.Event | None = None) -> bool:
        """Wait for a token; False if `cancelled` was set while waiting."""
        while True:
            with self._lock:
                self._refill(self._clock.time())
                if self._tokens >= 1:
                    self._tokens -= 1
                    return True
                wait = (1 - self._tokens) / self.rate
            if cancelled is not None:
                if cancelled.wait(self._clock.real_seconds(wait)):
                    return False
            else:
                self._clock.sleep(wait)

    def throttled(self) -> None:
        """AWS throttled a call we paced: halve the rate and spend the saved-up tokens.

        The configured rate was too high (another client shares the account's limit, or
        the limit is lower than documented); slowing down beats retrying blindly.
        """
        with self._lock:
            self._refill(self._clock.time())
            self.rate = max(self.MIN_RATE, self.rate / 2)
            self._tokens = min(self._tokens, 0.0)

    def succeeded(self) -> None:
        """A paced call went through: creep back towards the configured rate."""
        with self._lock:
            if self.rate < self.max_rate:
                self._refill(self._clock.time())
                self.rate = min(self.max_rate, self.rate * 1.25)
