"""Faults the simulated API injects: scripted or random errors, drops, truncation, 429s."""

from __future__ import annotations

import collections
import random
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["FAULT_KINDS", "FaultConfig", "FaultInjector", "SimulatedDisconnect"]

#: Values accepted by :meth:`SimulatorApi.script_faults`.
FAULT_KINDS = ("429", "500", "502", "503", "disconnect", "truncate", "ok")


class SimulatedDisconnect(Exception):
    """Raised by :meth:`SimulatorApi.handle` when the connection should drop with no response.

    The transport maps it to ``httpx.RemoteProtocolError``; the server aborts the connection.
    """


@dataclass(frozen=True)
class FaultConfig:
    """Random and rate-limit faults. Rates are per-request probabilities; ``latency`` is seconds.

    Random faults come from ``random.Random(seed)``, so a run with the same request sequence sees
    the same faults.
    """

    rate_limit_per_minute: int | None = None
    error_rate: float = 0.0
    disconnect_rate: float = 0.0
    truncate_rate: float = 0.0
    latency: float = 0.0
    seed: int = 0


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject, and counts them.

    Thread-safe. ``fault_count`` is by kind (``"429"``, ``"500"``, ``"502"``, ``"503"``,
    ``"disconnect"``, ``"truncate"``; rate-limit rejections count as ``"429"`` too).
    """

    def __init__(self, config: FaultConfig, monotonic: Callable[[], float]) -> None:
        """``monotonic`` drives the rate-limit window (real request pacing, not the simulated clock)."""
        self.config = config
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._rng = random.Random(config.seed)
        self._script: collections.deque[str] = collections.deque()
        self._windows: dict[str, collections.deque[float]] = {}
        self.fault_count: dict[str, int] = {}
        self.rate_limited_count = 0

    def script(self, kinds: Sequence[str]) -> None:
        """Queue faults for the next requests, consumed in order before any random fault.

        ``"ok"`` forces one normal response (no random fault for that request).
        """
        bad = [k for k in kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; expected some of {FAULT_KINDS}")
        with self._lock:
            self._script.extend(kinds)

    def next_fault(self) -> str | None:
        """The fault for the next request (counted), or None for a normal answer."""
        with self._lock:
            fault = self._draw()
            if fault is not None:
                self._count(fault)
            return fault

    def _draw(self) -> str | None:
        if self._script:
            kind = self._script.popleft()
            return None if kind == "ok" else kind
        f = self.config
        total = f.error_rate + f.disconnect_rate + f.truncate_rate
        if total <= 0:
            return None
        u = self._rng.random()
        if u < f.error_rate:
            return self._rng.choice(["429", "500", "502", "503"])
        if u < f.error_rate + f.disconnect_rate:
            return "disconnect"
        if u < total:
            return "truncate"
        return None

    def _count(self, kind: str) -> None:
        self.fault_count[kind] = self.fault_count.get(kind, 0) + 1

    def rate_limited(self, token: str) -> bool:
        """Whether ``token`` is over its per-minute budget; counts the rejection if so."""
        limit = self.config.rate_limit_per_minute
        if not limit:
            return False
        now = self._monotonic()
        with self._lock:
            window = self._windows.setdefault(token, collections.deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= limit:
                self.rate_limited_count += 1
                self._count("429")
                return True
            window.append(now)
            return False
