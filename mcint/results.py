"""Integration results: per-iteration estimates, their cumulative average, chi2/dof and Q.

Shared by every integrator (VEGAS, neural importance sampling)::

    r = Result()
    r.add(IterationResult(value=1.02, error=0.03, calls=10_000))
    r.add(IterationResult(value=0.99, error=0.02, calls=10_000))
    r.value, r.error, r.chi2_dof, r.Q      # inverse-variance weighted average
    print(r.summary())
    repr(r)                                 # '1.000(17)'

Averages are weighted by inverse variance (``weighted=True``, used while adapting, as vegas
does) or plain means (``weighted=False``, for iterations with a frozen sampler, whose
estimates are identically distributed). Iterations with zero error (e.g. an integrand that is
zero everywhere) are exact: they dominate the weighted average and give ``error == 0``, with no
division by zero anywhere. The average does not depend on the integral's scale: values and errors
far from 1 are divided by a power of two (exact) before their squares are formed, so neither
``1e-200`` nor ``1e200`` loses its error to underflow or overflow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["IterationResult", "Result", "format_value", "gammaincc", "pow2_scale"]

#: numbers within ``[2**-SAFE_EXP, 2**SAFE_EXP]`` are used as they are: sums of their squares
#: stay far inside float32's and float64's range; outside it they are rescaled (pow2_scale)
SAFE_EXP = 32


def pow2_scale(m: float, safe: int = SAFE_EXP) -> float:
    """The power of two ``s`` with ``|m| / s`` in ``[0.5, 1)``, or ``1.0`` when ``m`` is 0, not
    finite, or already within ``[2**-safe, 2**safe]``.

    Dividing by ``s`` is exact (only the exponent changes), so a computation on ``x / s`` gives
    the same digits as on ``x`` -- without squares that underflow (``1e-200``) or overflow
    (``1e200``). ``s`` and ``1 / s`` are normal floats.
    """
    a = abs(float(m))
    if a == 0.0 or not math.isfinite(a) or 2.0**-safe <= a <= 2.0**safe:
        return 1.0
    return math.ldexp(1.0, min(max(math.frexp(a)[1], -1022), 1022))


@dataclass(frozen=True)
class IterationResult:
    """One independent estimate of the integral."""

    #: the estimate
    value: float
    #: its standard deviation
    error: float
    #: integrand calls used for it
    calls: int = 0
    #: optional extras (e.g. ``{"nstrat": [..], "ninc": 1000}``)
    info: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        err = float(self.error)
        if err < 0:
            raise ValueError(f"an iteration's error must be >= 0, got {self.error!r}")

    @property
    def variance(self) -> float:
        e = float(self.error)
        return e * e  # inf, not OverflowError, past 1e154 (Result rescales before squaring)

    def __repr__(self) -> str:
        return format_value(self.value, self.error)


class Result:
    """Cumulative average of :class:`IterationResult` s with ``chi2/dof`` and ``Q``."""

    def __init__(self, iterations: Iterable[IterationResult] = (), *, weighted: bool = True,
                 label: str = "") -> None:
        self.weighted = bool(weighted)
        self.label = label
        self._its: list[IterationResult] = []
        #: weight statistics of the sampler (:class:`mcint.health.WeightDiagnostics`), if known
        self.diagnostics: Any = None
        for it in iterations:
            self.add(it)

    # -- accumulation ----------------------------------------------------------------------
    def add(self, it: IterationResult) -> None:
        """Append one iteration's estimate."""
        if not isinstance(it, IterationResult):
            raise TypeError(f"Result.add takes an IterationResult, got {type(it).__name__}")
        self._its.append(it)

    def extend(self, other: Result) -> None:
        """Append all iterations of ``other``."""
        for it in other.iterations:
            self.add(it)

    @property
    def iterations(self) -> list[IterationResult]:
        """The per-iteration estimates, in order."""
        return list(self._its)

    def __len__(self) -> int:
        return len(self._its)

    def __iter__(self) -> Iterator[IterationResult]:
        return iter(self._its)

    @property
    def calls(self) -> int:
        """Total integrand calls over all iterations."""
        return sum(int(it.calls) for it in self._its)

    # -- the average -----------------------------------------------------------------------
    def _stats(self, its: list[IterationResult]) -> tuple[float, float, float]:
        """(value, error, chi2) of the average of ``its``, computed on values and errors divided
        by a common power of two (exact), so that their squares neither underflow nor overflow."""
        if not its:
            return math.nan, math.nan, 0.0
        pairs = [(float(it.value), float(it.error)) for it in its]
        s = pow2_scale(max((abs(x) for p in pairs for x in p if math.isfinite(x)), default=0.0))
        vals = [v / s for v, _ in pairs]
        mean, err, chi2 = self._average(vals, [(e / s) * (e / s) for _, e in pairs])
        return mean * s, err * s, chi2

    def _average(self, vals: list[float], vars_: list[float]) -> tuple[float, float, float]:
        """(value, error, chi2) of estimates ``vals`` with variances ``vars_``."""
        n = len(vals)
        if not self.weighted:
            mean = math.fsum(vals) / n
            varsum = math.fsum(vars_)
            err = math.sqrt(varsum) / n
            if n == 1:
                return mean, err, 0.0
            ss = math.fsum((v - mean) ** 2 for v in vals)
            if varsum > 0:
                chi2 = ss * n / varsum
            else:
                chi2 = 0.0 if ss == 0 else math.inf
            return mean, err, chi2
        exact = [v for v, s2 in zip(vals, vars_) if s2 == 0]
        if exact:
            # zero-variance iterations are exact; they fix the average and its error is 0
            mean = math.fsum(exact) / len(exact)
            chi2 = math.fsum((v - mean) ** 2 / s2 for v, s2 in zip(vals, vars_) if s2 > 0)
            if any(v != mean for v in exact):
                chi2 = math.inf
            return mean, 0.0, chi2
        w = [1.0 / s2 for s2 in vars_]
        wsum = math.fsum(w)
        mean = math.fsum(wi * v for wi, v in zip(w, vals)) / wsum
        chi2 = math.fsum(wi * (v - mean) ** 2 for wi, v in zip(w, vals))
        return mean, math.sqrt(1.0 / wsum), chi2

    @property
    def value(self) -> float:
        """Cumulative estimate of the integral."""
        return self._stats(self._its)[0]

    @property
    def error(self) -> float:
        """Standard deviation of :attr:`value`."""
        return self._stats(self._its)[1]

    @property
    def chi2(self) -> float:
        """chi^2 of the iterations about their average."""
        return self._stats(self._its)[2]

    @property
    def dof(self) -> int:
        """Degrees of freedom of :attr:`chi2` (iterations - 1)."""
        return max(len(self._its) - 1, 0)

    @property
    def chi2_dof(self) -> float:
        """chi^2 per degree of freedom (0 for a single iteration); ~1 when errors are honest."""
        return self.chi2 / self.dof if self.dof > 0 else 0.0

    @property
    def Q(self) -> float:
        """p-value of :attr:`chi2` (probability of a larger chi^2 by chance); ``nan`` if dof=0."""
        if self.dof == 0:
            return math.nan
        return gammaincc(self.dof / 2.0, self.chi2 / 2.0)

    @property
    def rel_error(self) -> float:
        """``error / |value|`` (``inf`` for a zero value with nonzero error, 0 if both are 0)."""
        v, e, _ = self._stats(self._its)
        if e == 0:
            return 0.0
        return e / abs(v) if v != 0 else math.inf

    # -- presentation ----------------------------------------------------------------------
    def table(self) -> list[dict[str, Any]]:
        """One row per iteration: estimate, its error, cumulative average, chi2/dof, Q."""
        rows = []
        acc = Result(weighted=self.weighted)
        for i, it in enumerate(self._its):
            acc.add(it)
            rows.append({"itn": i + 1, "value": float(it.value), "error": float(it.error),
                         "calls": int(it.calls), "avg_value": acc.value, "avg_error": acc.error,
                         "chi2_dof": acc.chi2_dof, "Q": acc.Q})
        return rows

    def summary(self) -> str:
        """Readable iteration table, like vegas' ``summary()``."""
        head = ("itn", "integral", "wgt average" if self.weighted else "average", "chi2/dof",
                "Q")
        lines = []
        for row in self.table():
            q = "" if math.isnan(row["Q"]) else f"{row['Q']:.2f}"
            lines.append((f"{row['itn']:d}", format_value(row["value"], row["error"]),
                          format_value(row["avg_value"], row["avg_error"]),
                          f"{row['chi2_dof']:.2f}", q))
        widths = [max([len(h)] + [len(r[i]) for r in lines]) for i, h in enumerate(head)]
        aligns = (">", "<", "<", ">", ">")

        def fmt(cells: tuple[str, ...]) -> str:
            parts = [f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths)]
            return "   ".join(parts[:2]) + "  " + "  ".join(parts[2:])

        out = [fmt(head), "-" * (sum(widths) + 11)]
        out += [fmt(r) for r in lines]
        if self.label:
            out.insert(0, self.label)
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable content (for files and the CLI)."""
        return {"value": self.value, "error": self.error, "chi2_dof": self.chi2_dof,
                "Q": self.Q, "weighted": self.weighted, "calls": self.calls,
                "iterations": [asdict(it) for it in self._its]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        """Inverse of :meth:`to_dict`."""
        return cls((IterationResult(**it) for it in d["iterations"]),
                   weighted=bool(d.get("weighted", True)))

    def __repr__(self) -> str:
        return format_value(self.value, self.error)

    def __str__(self) -> str:
        q = "" if self.dof == 0 else f"  chi2/dof={self.chi2_dof:.2f} Q={self.Q:.2f}"
        return f"{format_value(self.value, self.error)}{q}"

    def __float__(self) -> float:
        return float(self.value)


def format_value(value: float, error: float, ndigits: int = 2) -> str:
    """``value`` with ``error`` in parentheses on its last digits: ``1.2345(67)``.

    The error keeps ``ndigits`` significant digits; very large or small numbers get a common
    exponent (``1.230(40)e-12``); a zero error prints as ``(0)``.
    """
    v, e = float(value), float(error)
    if not math.isfinite(v) or not math.isfinite(e):
        return f"{v:g}({e:g})" if not math.isnan(e) else f"{v:g}(nan)"
    scale = max(abs(v), e)
    if scale == 0:
        return "0(0)"
    exp = 0
    if scale >= 1e5 or scale < 1e-4:
        exp = int(math.floor(math.log10(scale)))
        v, e = v / 10.0**exp, e / 10.0**exp
    suffix = f"e{exp:+03d}" if exp else ""
    if e == 0:
        return f"{v:.{max(ndigits, 6)}g}(0){suffix}"
    dec = ndigits - 1 - int(math.floor(math.log10(e)))
    if dec > 0:
        digits = round(e * 10.0**dec)
        return f"{v:.{dec}f}({digits:d}){suffix}"
    q = 10.0 ** (-dec)
    return f"{round(v / q) * q:.0f}({round(e / q) * q:.0f}){suffix}"


def gammaincc(a: float, x: float) -> float:
    """Regularised upper incomplete gamma ``Q(a, x) = Gamma(a, x) / Gamma(a)``.

    Series for ``x < a + 1``, Lentz continued fraction otherwise (Numerical Recipes 6.2),
    accurate to ~1e-14; scipy is not needed.
    """
    if a <= 0:
        raise ValueError(f"gammaincc needs a > 0, got a={a}")
    if x < 0 or math.isnan(x):
        raise ValueError(f"gammaincc needs x >= 0, got x={x}")
    if x == 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    lg = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(lg))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(1.0, math.exp(lg) * h)
