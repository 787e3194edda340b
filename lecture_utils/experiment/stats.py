"""The series' statistics: a mean with its standard error, a difference with its Student's t interval.

Every verdict word the lessons print ("adds accuracy", "costs accuracy", "above", "below") comes from
:meth:`Difference.verdict`, which gives one only when the 95 % interval excludes zero. Over paired
seeds that interval is ``mean +- t(0.975, n - 1) * SE``: with 3 seeds t is 4.30, with 5 seeds 2.78,
so "two standard errors" is about 82 % confidence at 3 seeds, not 95 %. A single run has no spread
of its own; :func:`pooled_sd` gives it the seed-to-seed spread of runs that do have seeds, with their
degrees of freedom. No torch here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy.stats import t as student_t

__all__ = ["CONFIDENCE", "t_critical", "mean_se", "Difference", "paired", "versus", "unpaired", "pooled_sd"]

CONFIDENCE = 0.95


def t_critical(df: float, confidence: float = CONFIDENCE) -> float:
    """Two-sided critical value of Student's t with `df` degrees of freedom (4.30 for df 2 at 95 %)."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    return float(student_t.ppf(0.5 + confidence / 2, df))


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, standard error of the mean)`` of `values`; the error is nan for a single value."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_se needs at least one value")
    if len(values) == 1:
        return values[0], math.nan
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


@dataclass(frozen=True)
class Difference:
    """An estimated difference `mean` with standard error `se` on `df` degrees of freedom, over `n` runs."""

    what: str
    mean: float
    se: float
    n: int
    df: float

    @property
    def half_width(self) -> float:
        """Half the 95 % interval: t(0.975, df) x SE (inf when there is no error estimate)."""
        if not (self.df > 0 and math.isfinite(self.se)):
            return math.inf
        return t_critical(self.df) * self.se

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % interval ``(low, high)``."""
        return self.mean - self.half_width, self.mean + self.half_width

    @property
    def t(self) -> float:
        """mean / SE."""
        if self.se == 0:
            return math.copysign(math.inf, self.mean) if self.mean else 0.0
        return self.mean / self.se if math.isfinite(self.se) else 0.0

    @property
    def p(self) -> float:
        """Two-sided p-value of "no difference" (1 where there is no error estimate)."""
        if not (self.df > 0 and math.isfinite(self.se)):
            return 1.0
        return float(2 * student_t.sf(abs(self.t), self.df))

    @property
    def resolved(self) -> bool:
        """Whether the 95 % interval excludes zero."""
        low, high = self.interval
        return low > 0 or high < 0

    def verdict(self, above: str = "adds accuracy", below: str = "costs accuracy",
                neither: str = "not resolved at 95 %") -> str:
        """`above` or `below` when the 95 % interval excludes zero on that side, else `neither`."""
        if not self.resolved:
            return neither
        return above if self.mean > 0 else below

    def points(self) -> str:
        """``+5.5 +- 6.2 points (95 %, 4 df)``: the difference and its interval's half-width, in points."""
        half = "inf" if math.isinf(self.half_width) else f"{100 * self.half_width:.1f}"
        mean = 100 * self.mean if round(100 * self.mean, 1) != 0 else 0.0  # no "-0.0" for a mean that rounds to zero
        return f"{mean:+.1f} +- {half} points (95 %, {self.df:.3g} df)"


def paired(a: Sequence[float], b: Sequence[float], what: str = "") -> Difference:
    """``a - b`` over pairs (the same seed, data and budget): the mean of the differences, n - 1 df."""
    if len(a) != len(b):
        raise ValueError(f"paired needs as many values on each side, got {len(a)} and {len(b)}")
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    mean, se = mean_se(diffs)
    return Difference(what, mean, se, len(diffs), len(diffs) - 1)


def versus(values: Sequence[float], reference: float, what: str = "",
           pooled: tuple[float, float] | None = None) -> Difference:
    """``mean(values) - reference``, a fixed number (a baseline), with the seeds' error on n - 1 df.

    A single value takes its spread from `pooled` ``(sd, df)`` (:func:`pooled_sd`): the error is sd, on its df.
    """
    values = [float(v) for v in values]
    if len(values) > 1:
        mean, se = mean_se(values)
        return Difference(what, mean - reference, se, len(values), len(values) - 1)
    if pooled is None:
        return Difference(what, values[0] - reference, math.nan, 1, 0)
    sd, df = pooled
    return Difference(what, values[0] - reference, sd, 1, df)


def pooled_sd(groups: Iterable[Sequence[float]]) -> tuple[float, float]:
    """``(sd, df)``: the within-group standard deviation pooled over the groups of two or more values.

    Each group is one network's seeds; the pooled variance is the sum of squared deviations from each
    group's own mean over the sum of (n - 1).
    """
    squares, df = 0.0, 0
    for group in groups:
        group = [float(v) for v in group]
        if len(group) > 1:
            mean = statistics.fmean(group)
            squares += sum((v - mean) ** 2 for v in group)
            df += len(group) - 1
    if df == 0:
        raise ValueError("pooled_sd needs at least one group of two or more values")
    return math.sqrt(squares / df), float(df)


def unpaired(a: Sequence[float], b: Sequence[float], what: str = "",
             pooled: tuple[float, float] | None = None) -> Difference:
    """``mean(a) - mean(b)`` of independent runs (Welch: each side's own error, Welch-Satterthwaite df).

    A side of a single run takes its spread from `pooled` ``(sd, df)``; without it the difference has no interval.
    """
    sides = []
    for values in (a, b):
        values = [float(v) for v in values]
        if not values:
            raise ValueError("unpaired needs at least one value on each side")
        if len(values) > 1:
            mean, se = mean_se(values)
            sides.append((mean, se * se, len(values) - 1.0))
        elif pooled is not None:
            sides.append((values[0], pooled[0] ** 2, float(pooled[1])))
        else:
            sides.append((values[0], math.nan, 0.0))
    (ma, va, da), (mb, vb, db) = sides
    n = len(a) + len(b)
    if not (da > 0 and db > 0):
        return Difference(what, ma - mb, math.nan, n, 0)
    var = va + vb
    if var == 0:
        return Difference(what, ma - mb, 0.0, n, da + db)
    df = var * var / (va * va / da + vb * vb / db)
    return Difference(what, ma - mb, math.sqrt(var), n, df)
