"""Pacing for the engine: a client-side token bucket on the runtime's clock.

The engine never calls `time` directly: it gets a Clock (`runtime.clock`), so tests and the
benchmark can run it against a simulated AWS whose seconds pass faster than real ones.
"""

from __future__ import annotations

import threading

from ecs_delivery.runtime.clock import Clock, ScaledClock, SystemClock

__all__ = ["Clock", "ScaledClock", "SystemClock", "TokenBucket"]


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
