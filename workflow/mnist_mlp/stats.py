"""How sure an accuracy is: a 95 % interval for an accuracy measured on n images, and whether two
networks measured on the same images differ by more than chance (McNemar's exact test on their
paired predictions). Standard library only: the report's front page uses it when it is built.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of an accuracy of ``correct`` of ``n``: unlike
    the normal approximation it stays inside [0, 1] and is sound near 100 %."""
    if n <= 0:
        return math.nan, math.nan
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float]:
    """``wilson`` of an accuracy given as a share of ``n`` images."""
    if not isinstance(accuracy, (int, float)) or math.isnan(accuracy):
        return math.nan, math.nan
    return wilson(round(accuracy * n), n)


def mcnemar(only_first: int, only_second: int) -> float:
    """Two-sided exact p-value of McNemar's test: of the images exactly one of two networks got
    right, ``only_first`` were the first's and ``only_second`` the second's; under "no
    difference" each such image is a fair coin."""
    n = only_first + only_second
    if n == 0:
        return 1.0
    k = min(only_first, only_second)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def describe_interval(accuracy: float, n: int) -> str:
    """ "98.41 % (95 % CI 98.15-98.64 %, 10,000 images)"."""
    low, high = accuracy_interval(accuracy, n)
    return f"{accuracy:.2%} (95 % CI {low * 100:.2f}-{high * 100:.2f} %, {n:,} images)"
