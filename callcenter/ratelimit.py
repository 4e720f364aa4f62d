"""Token buckets per key for public endpoints: ticket issue per device and phone, look-ups."""

from __future__ import annotations

from dataclasses import dataclass

from queue_engine import QueueError


class RateLimitedError(QueueError):
    """Too many requests; try again in {retry_s} seconds."""

    code = "rate_limited"
    zh = "请求过于频繁，请{retry_s}秒后再试"
    status = 429


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``rate`` requests per second per key, bursts up to ``burst``; old keys are forgotten."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def hit(self, key: str, now: float) -> None:
        """Take one token for ``key`` or raise RateLimitedError."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens < 1:
            raise RateLimitedError(retry_s=max(1, round((1 - bucket.tokens) / self.rate)))
        bucket.tokens -= 1

    def _forget(self, now: float) -> None:
        full = [
            k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
