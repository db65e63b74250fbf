"""Percentiles of durations from log-scale histograms (issue 18, migration 0021).

The database counts each duration in the bin ``stats_seconds_bin`` gives it: bin 0 under a second,
bin k >= 1 for seconds in [g^(k-1), g^k) with g = 101/99. A bin's representative value is
2 g^k / (1 + g), within ``RELATIVE_ERROR`` (1 %) of every value of the bin (half a second for bin
0). A percentile is found as ``percentile_cont`` finds it (linear interpolation between the two
values around the rank ``p * (n - 1)``) over the representatives; since both values are within 1 %
(or half a second) of the true ones, so is their interpolation: the result is within
``RELATIVE_ERROR * exact + ABSOLUTE_ERROR_SECONDS`` of ``percentile_cont`` over the facts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

GROWTH = 101 / 99
RELATIVE_ERROR = (GROWTH - 1) / (GROWTH + 1)  # 0.01
ABSOLUTE_ERROR_SECONDS = 0.5  # durations under a second (bin 0)


def bin_of(seconds: float) -> int:
    """The bin of a duration, as the SQL function ``stats_seconds_bin`` computes it: a negative
    duration (clock skew, a date ahead) is ``-2 - bin_of(-seconds)``; -1 is no duration."""
    if seconds < 0:
        return -2 - bin_of(-seconds)
    if seconds < 1:
        return 0
    return min(16000, 1 + math.floor(math.log(seconds) / math.log(GROWTH)))


def bin_value(k: int) -> float:
    """The value a bin stands for: within 1 % of each of its values (half a second for bin 0).
    Bins in their order (-1 left out) are values in their order."""
    if k <= -2:
        return -bin_value(-2 - k)
    if k <= 0:
        return 0.5
    return 2 * GROWTH**k / (1 + GROWTH)


def percentile(counts: Mapping[int, int], p: float) -> float | None:
    """``percentile_cont(p)`` over a histogram {bin: count} (bin -1 is no duration and is skipped);
    None when it holds no duration."""
    return percentile_of_values(bin_values(counts), p)


def bin_values(counts: Mapping[int, int]) -> dict[float, int]:
    """{value: count} of a histogram's bins (bin -1 skipped)."""
    return {bin_value(k): n for k, n in counts.items() if k != -1}


def percentile_of_values(counts: Mapping[float, int], p: float) -> float | None:
    """``percentile_cont(p)`` over values with their counts ({value: count}); None when empty."""
    ordered = sorted((v, n) for v, n in counts.items() if n > 0)
    total = sum(n for _, n in ordered)
    if total == 0:
        return None
    rank = p * (total - 1)
    low, high = math.floor(rank), math.ceil(rank)
    values: dict[int, float] = {}
    seen = 0
    for value, n in ordered:
        for wanted in (low, high):
            if wanted not in values and seen <= wanted < seen + n:
                values[wanted] = value
        seen += n
        if high in values:
            break
    return values[low] + (rank - low) * (values[high] - values[low])
