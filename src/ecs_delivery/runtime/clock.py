"""The one clock of the runtime: real, scaled or virtual time, and the process's current one.

Every deployer waits on CodeDeploy for minutes to hours (canary, bake, termination wait). The
waiters take `sleep` and `clock` callables whose defaults, `sleep` and `now` here, ask the
current clock at call time: the real one, unless a test, the benchmark or the release demo
runs the same code on simulated time (`using(VirtualClock())`), so a 60-minute termination
wait passes in microseconds and every timeout is measured on the simulator's clock.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
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
    For threads that wait on each other (the release engine); one thread: VirtualClock.
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


class VirtualClock:
    """Time that passes only when someone sleeps: `sleep(s)` moves it on by `s` at once.

    Exact and instant for one deployer waiting on the simulated CodeDeploy; with several
    threads every sleep moves everyone's time (use ScaledClock there).
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def real_seconds(self, seconds: float) -> float:
        return 0.0


_current: Clock = SystemClock()


def current() -> Clock:
    """The clock the runtime's waiters use unless they are handed one."""
    return _current


@contextlib.contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Run the runtime on `clock` inside the block (tests, the benchmark, the demo)."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous


def sleep(seconds: float) -> None:
    """Wait on the current clock (the waiters' default `sleep`)."""
    _current.sleep(seconds)


def now() -> float:
    """The current clock's time (the waiters' default `clock`)."""
    return _current.time()
