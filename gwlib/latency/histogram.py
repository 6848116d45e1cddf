"""An HdrHistogram-style latency histogram, in numpy.

Values are recorded as integer **nanoseconds** in log-linear buckets: exact below 2,048 ns,
and above that each power-of-two range is cut into 1,024 equal buckets, so any value is
known to within 1/1,024 (0.1 %, "3 significant digits", as wrk2 and HdrHistogram use).
The public face speaks **milliseconds**.

Why a histogram and not a list of percentiles: two histograms add up exactly (merge runs by
adding counts), any percentile can be read back afterwards, and resampling the counts gives
bootstrap confidence intervals without keeping every raw value.

Percentiles follow HdrHistogram: the smallest recorded value ``v`` such that at least
``p %`` of all values are ``<= v`` (numpy's ``method="inverted_cdf"``), reported as the
*highest* value equivalent to ``v``'s bucket — never below the true sample percentile,
and above it by at most 0.1 %.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

#: Largest recordable value: one day, as wrk2 (``MAX_LATENCY``).
MAX_NS = 24 * 3600 * 10**9

_NS_PER_MS = 1e6


class Histogram:
    """Latencies in log-linear buckets (HdrHistogram layout, nanosecond unit, 3 digits).

    >>> h = Histogram.from_values([1.0, 2.0, 3.0, 4.0])   # milliseconds
    >>> h.count, h.percentile(50)
    (4, 2.0)
    """

    __slots__ = ("_counts", "digits", "_half_mag", "_half")

    def __init__(self, digits: int = 3) -> None:
        if not 1 <= digits <= 5:
            raise ValueError("digits must be 1..5")
        self.digits = digits
        sub_bucket_count = 2 ** math.ceil(math.log2(2 * 10**digits))
        self._half = sub_bucket_count // 2
        self._half_mag = int(math.log2(self._half))
        self._counts = np.zeros(0, dtype=np.int64)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_values(cls, values_ms: Iterable[float], counts: Iterable[int] | None = None,
                    digits: int = 3) -> Histogram:
        """A histogram of latencies given in milliseconds (optionally with a count each)."""
        h = cls(digits)
        h.record(values_ms, counts)
        return h

    @classmethod
    def from_ns(cls, values_ns: Iterable[int], digits: int = 3) -> Histogram:
        h = cls(digits)
        h._record_ns(np.asarray(values_ns, dtype=np.int64), None)
        return h

    def copy(self) -> Histogram:
        h = Histogram(self.digits)
        h._counts = self._counts.copy()
        return h

    def record(self, values_ms: Iterable[float] | float, counts: Iterable[int] | int | None = None) -> None:
        """Add latencies (ms); ``counts`` gives how many times each value occurred."""
        v = np.atleast_1d(np.asarray(values_ms, dtype=float))
        if v.size and not np.all(np.isfinite(v)):
            raise ValueError("latencies must be finite numbers")
        if v.size and v.min() < 0:
            raise ValueError(f"latencies must not be negative (got {v.min()} ms)")
        ns = np.rint(v * _NS_PER_MS)
        if ns.size and ns.max() > MAX_NS:
            raise ValueError(f"latency {v.max()} ms is above the largest recordable value (one day)")
        c = None
        if counts is not None:
            c = np.atleast_1d(np.asarray(counts, dtype=np.int64))
            if c.shape != v.shape:
                raise ValueError("values and counts must have the same length")
            if c.size and c.min() < 0:
                raise ValueError("counts must not be negative")
        self._record_ns(ns.astype(np.int64), c)

    def _record_ns(self, ns: np.ndarray, counts: np.ndarray | None) -> None:
        if ns.size == 0:
            return
        if ns.min() < 0 or ns.max() > MAX_NS:
            raise ValueError("latency out of the recordable range (0 .. one day)")
        idx = self._index(ns)
        n = int(idx.max()) + 1
        if n > self._counts.size:
            self._counts = np.concatenate([self._counts, np.zeros(n - self._counts.size, np.int64)])
        np.add.at(self._counts, idx, 1 if counts is None else counts)

    # -- bucket arithmetic (HdrHistogram, unit magnitude 0) ----------------------------------
    def _index(self, ns: np.ndarray) -> np.ndarray:
        mask = 2 * self._half - 1
        # bit length of (v | mask); exact in float64 for every value below 2**53 ns
        _, exp = np.frexp((ns | mask).astype(np.float64))
        bucket = exp.astype(np.int64) - (self._half_mag + 1)
        sub = ns >> bucket
        return ((bucket + 1) << self._half_mag) + (sub - self._half)

    def _lowest_ns(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64)
        bucket = (idx >> self._half_mag) - 1
        sub = (idx & (self._half - 1)) + self._half
        low = bucket < 0
        sub = np.where(low, sub - self._half, sub)
        bucket = np.where(low, 0, bucket)
        return sub << bucket, np.left_shift(np.int64(1), bucket)

    def _highest_ns(self, idx: np.ndarray) -> np.ndarray:
        lo, size = self._lowest_ns(idx)
        return lo + size - 1

    def _median_ns(self, idx: np.ndarray) -> np.ndarray:
        lo, size = self._lowest_ns(idx)
        return lo + (size >> 1)

    # -- reading -----------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return int(self._counts.sum())

    def __len__(self) -> int:
        return self.count

    def _nonzero(self) -> tuple[np.ndarray, np.ndarray]:
        idx = np.flatnonzero(self._counts)
        return idx, self._counts[idx]

    def buckets(self) -> pd.DataFrame:
        """Every non-empty bucket: its value range (ms) and count."""
        idx, c = self._nonzero()
        lo, size = self._lowest_ns(idx)
        return pd.DataFrame({"low_ms": lo / _NS_PER_MS, "high_ms": (lo + size - 1) / _NS_PER_MS, "count": c})

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        """(value_ms, count) per non-empty bucket, each at the bucket's median value."""
        idx, c = self._nonzero()
        return self._median_ns(idx) / _NS_PER_MS, c

    def _require(self) -> None:
        if self.count == 0:
            raise ValueError("the histogram is empty")

    @property
    def min(self) -> float:
        self._require()
        idx, _ = self._nonzero()
        return float(self._lowest_ns(idx[:1])[0][0] / _NS_PER_MS)

    @property
    def max(self) -> float:
        self._require()
        idx, _ = self._nonzero()
        return float(self._highest_ns(idx[-1:])[0] / _NS_PER_MS)

    @property
    def mean(self) -> float:
        v, c = self.values()
        self._require()
        return float(np.dot(v, c) / c.sum())

    @property
    def stdev(self) -> float:
        v, c = self.values()
        self._require()
        m = np.dot(v, c) / c.sum()
        return float(math.sqrt(np.dot((v - m) ** 2, c) / c.sum()))

    def percentile(self, p: float) -> float:
        """The latency (ms) at percentile ``p`` (0–100)."""
        return float(self.percentiles([p])[0])

    def percentiles(self, ps: Sequence[float]) -> np.ndarray:
        self._require()
        ps = np.asarray(ps, dtype=float)
        if np.any((ps < 0) | (ps > 100)):
            raise ValueError("percentiles must be between 0 and 100")
        idx, c = self._nonzero()
        return self._percentiles_from(idx, np.cumsum(c), ps) / _NS_PER_MS

    def _percentiles_from(self, idx: np.ndarray, cum: np.ndarray, ps: np.ndarray) -> np.ndarray:
        total = cum[..., -1:]
        # rank of the p-th percentile: ceil(p/100 * N), at least 1 (tolerant to FP noise)
        rank = np.maximum(1, np.ceil(ps / 100.0 * total - 1e-9))
        if cum.ndim == 1:
            pos = np.searchsorted(cum, rank, side="left")
        else:  # one row per bootstrap replicate
            pos = np.stack([np.searchsorted(row, r, side="left") for row, r in zip(cum, rank)])
        return self._highest_ns(idx[pos])

    def cdf(self, value_ms: float) -> float:
        """The fraction of recorded latencies at or below ``value_ms``."""
        self._require()
        idx, c = self._nonzero()
        lo, _ = self._lowest_ns(idx)
        return float(c[lo <= value_ms * _NS_PER_MS].sum() / c.sum())

    # -- combining ---------------------------------------------------------------------------
    def __add__(self, other: Histogram) -> Histogram:
        out = self.copy()
        out += other
        return out

    def __iadd__(self, other: Histogram) -> Histogram:
        if not isinstance(other, Histogram):
            return NotImplemented
        if other.digits != self.digits:
            raise ValueError("cannot add histograms with different precision (digits)")
        n = max(self._counts.size, other._counts.size)
        a = np.zeros(n, np.int64)
        a[: self._counts.size] += self._counts
        a[: other._counts.size] += other._counts
        self._counts = a
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        a, b = np.trim_zeros(self._counts, "b"), np.trim_zeros(other._counts, "b")
        return self.digits == other.digits and a.size == b.size and bool(np.all(a == b))

    __hash__ = None  # mutable

    @staticmethod
    def merge(histograms: Iterable[Histogram]) -> Histogram:
        """One histogram holding every value of all of them (the right way to pool runs)."""
        hs = list(histograms)
        if not hs:
            raise ValueError("nothing to merge")
        out = hs[0].copy()
        for h in hs[1:]:
            out += h
        return out

    def resample(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """Bootstrap replicates of the counts: shape (size, buckets) (multinomial draws)."""
        _, c = self._nonzero()
        n = int(c.sum())
        return rng.multinomial(n, c / n, size=size)

    # -- output ------------------------------------------------------------------------------
    def spectrum(self, ticks_per_half_distance: int = 5) -> pd.DataFrame:
        """The percentile spectrum, as wrk2 prints it ("Detailed Percentile spectrum").

        Columns: ``latency_ms``, ``percentile`` (0–100), ``total_count``, ``inverse``
        (1/(1−p), the x axis of a latency-by-percentile plot; ``inf`` on the last row).
        """
        self._require()
        idx, c = self._nonzero()
        cum = np.cumsum(c)
        total = int(cum[-1])
        high = self._highest_ns(idx) / _NS_PER_MS
        rows: list[tuple[float, float, int]] = []
        pti = 0.0
        for j in range(idx.size):
            current = 100.0 * cum[j] / total
            last = cum[j] == total
            while pti <= current and pti < 100.0:
                rows.append((float(high[j]), pti, int(cum[j])))
                half_distance = 2 ** (int(math.log(100.0 / (100.0 - pti)) / math.log(2)) + 1)
                pti += 100.0 / (ticks_per_half_distance * half_distance)
                if last:
                    break
        rows.append((float(high[-1]), 100.0, total))
        df = pd.DataFrame(rows, columns=["latency_ms", "percentile", "total_count"])
        with np.errstate(divide="ignore"):
            df["inverse"] = 1.0 / (1.0 - df["percentile"] / 100.0)
        return df

    def to_hgrm(self, ticks_per_half_distance: int = 5) -> str:
        """The spectrum as text in HdrHistogram's classic ``.hgrm`` format (values in ms)."""
        sp = self.spectrum(ticks_per_half_distance)
        lines = [f"{'Value':>12} {'Percentile':>12} {'TotalCount':>12} {'1/(1-Percentile)':>12}", ""]
        for r in sp.itertuples():
            inv = "inf" if math.isinf(r.inverse) else f"{r.inverse:.2f}"
            lines.append(f"{r.latency_ms:12.3f} {r.percentile / 100:12.6f} {r.total_count:12d} {inv:>12}")
        lines.append(f"#[Mean    = {self.mean:12.3f}, StdDeviation   = {self.stdev:12.3f}]")
        lines.append(f"#[Max     = {self.max:12.3f}, Total count    = {self.count:12d}]")
        lines.append(f"#[Buckets = {max(1, self._counts.size // self._half - 1):12d}, "
                     f"SubBuckets     = {2 * self._half:12d}]")
        return "\n".join(lines) + "\n"

    def summary(self, ps: Sequence[float] = (50, 90, 99, 99.9, 100)) -> pd.Series:
        vals = self.percentiles(ps)
        return pd.Series(vals, index=[_label(p) for p in ps], name="latency_ms")

    def __repr__(self) -> str:
        if self.count == 0:
            return "Histogram(empty)"
        p50, p99 = self.percentiles([50, 99])
        return f"Histogram(count={self.count}, p50={p50:.3f} ms, p99={p99:.3f} ms, max={self.max:.3f} ms)"


def _label(p: float) -> str:
    """``50 -> 'p50'``, ``99.9 -> 'p99.9'``, ``100 -> 'max'``."""
    if p >= 100:
        return "max"
    return f"p{p:g}"
