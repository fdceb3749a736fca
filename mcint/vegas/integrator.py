"""VEGAS+ integration: adaptive map + adaptive stratified sampling, on every backend.

>>> import numpy as np, mcint
>>> f = lambda x: np.exp(-100 * np.sum((x - 0.5) ** 2, axis=1)) * (100 / np.pi) ** 2
>>> v = mcint.VEGAS(f, 4, seed=1)
>>> _ = v.train(200_000, nitn=10)             # 10 adapting iterations of 20_000 calls
>>> r = v.integrate(250_000, nitn=5)          # frozen sampler, 5 x 50_000 calls
>>> abs(r.value - 1) < 5 * r.error
True
>>> batch = v.sample(1000)                    # weights.mean() estimates the integral

``calls`` is always the total budget of integrand calls of a method, whatever ``nitn`` (as for
the NIS :class:`~mcint.nis.Integrator`); each iteration gets ``calls // nitn``.

Each iteration draws ``n_h`` points uniformly in every y-space hypercube ``h``, maps them
through the adaptive map (``x = map(y)``, Jacobian ``J``) and estimates the integral as
``sum_h sum_{i in h} f(x_i) J_i V_h / n_h`` with ``V_h`` the cube volume; the variance is the
sum of the per-cube sample variances. Adapting iterations then regrid the map from
``(f J)**2`` and re-allocate points to cubes by their damped standard deviation (VEGAS+).

The sums run on ``f / scale`` (see :class:`mcint.Integrand`'s ``rescale``) over the unit volume;
scale and domain volume multiply the results at the end, so ``1e-200 f`` and ``1e200 f`` give
the answer of ``f`` times the factor, with the same relative error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backends import Backend, get_backend, use
from ..batch import Batch
from ..integrand import Integrand, unscaled
from ..results import IterationResult, Result
from ..transforms import Affine
from . import kernels as K
from ._util import check_bool, check_frac, check_int, check_seed
from .map import ALPHA_MAX, AdaptiveMap, _check_alpha
from .stratify import Stratification, choose_ninc, choose_nstrat

#: round-off floor of per-point deviations, relative to the cube mean (vegas' EPSILON)
EPSILON = float(np.finfo(np.float64).eps) * 1e4


class VEGAS:
    """VEGAS+ integrator and sampler (Lepage's algorithm, as in the ``vegas`` package).

    Parameters
    ----------
    integrand:
        ``f(x) -> values`` for ``x`` of shape ``(n, dims)``; a numpy function works on every
        backend (it is wrapped in :class:`mcint.Integrand`).
    dims:
        Number of dimensions.
    backend:
        Backend name or object (default: current / ``$MCINT_BACKEND`` / numba if installed / numpy).
    seed:
        Seed of the random stream (a non-negative integer or None); the same seed gives the
        same numbers on a backend.
    domain:
        ``[(low, high), ...]`` per axis; default the unit hypercube.
    nitn:
        Iterations of :meth:`train` when it is not given ``nitn``.
    ninc:
        Maximum map increments per axis (vegas' ``maxinc_axis``; fewer when calls are few).
    alpha:
        Map damping exponent, 0 <= alpha <= 10 (0 freezes the map; vegas' default 0.5,
        0.1-2 in use; larger values would underflow the adaptation weights).
    beta:
        Stratification damping (0 <= beta <= 1; 0 = classic VEGAS without re-allocation).
    neval_frac:
        Fraction of the calls re-allocated by VEGAS+ (the rest is spread evenly).
    nstrat:
        Strata per axis (default chosen from the calls, as vegas does).
    dtype:
        ``"float64"`` or ``"float32"`` for points, map and integrand (statistics are float64).
    nonfinite:
        What to do with NaN/inf integrand values: ``"raise"`` or ``"zero"`` (with a warning).
    batch_size:
        Points per integrand call (memory bound); whole hypercubes are never split.
    max_neval_hcube:
        Cap on the points of a single hypercube.
    max_nhcube:
        Cap on the number of hypercubes.
    """

    def __init__(self, integrand: Callable[[Any], Any] | Integrand, dims: int, *,
                 backend: str | Backend | None = None, seed: int | None = None,
                 domain: Sequence[tuple[float, float]] | None = None, nitn: int = 10,
                 ninc: int = 1000, alpha: float = 0.5, beta: float = 0.75,
                 neval_frac: float = 0.75, nstrat: Sequence[int] | None = None,
                 dtype: str = "float64", nonfinite: str = "raise", batch_size: int = 262_144,
                 max_neval_hcube: int = 50_000, max_nhcube: int = 10**7) -> None:
        self.dims = check_int(dims, "dims", 1)
        self.backend = get_backend(backend)
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        self.dtype = dtype
        self.nitn = check_int(nitn, "nitn", 1)
        self.max_ninc = check_int(ninc, "ninc", 2)
        self.alpha = _check_alpha(alpha)
        self.beta = check_frac(beta, "beta", 0, 1)
        self.neval_frac = check_frac(neval_frac, "neval_frac", 0, 1, open_hi=True)
        if nstrat is not None:
            nstrat = tuple(check_int(n, "nstrat[i]", 1) for n in nstrat)
            if len(nstrat) != self.dims:
                raise ValueError(f"nstrat has {len(nstrat)} entries but dims={self.dims}")
        self._user_nstrat = nstrat
        self.batch_size = check_int(batch_size, "batch_size", 1)
        self.max_neval_hcube = check_int(max_neval_hcube, "max_neval_hcube", 2)
        self.max_nhcube = check_int(max_nhcube, "max_nhcube", 1)
        seed = check_seed(seed)
        # values outside [2^-32, 2^32] are summed in units of a power of two (exact)
        self.integrand = Integrand(integrand, self.dims, nonfinite=nonfinite, rescale=True)
        self.domain = _make_domain(domain, self.dims)
        self.volume = 1.0 if self.domain is None else float(np.prod(np.abs(self.domain.width)))
        self.map = AdaptiveMap(self.dims, self.max_ninc, backend=self.backend)
        if self.domain is not None:
            self.domain = self.domain.to(self.backend, dtype)
        self.rng = self.backend.rng(seed)
        self.seed = seed
        self.strat: Stratification | None = None
        #: results of every call to :meth:`train` and :meth:`integrate`, in order
        self.history: list[Result] = []

    def __repr__(self) -> str:
        s = self.strat
        return (f"VEGAS(dims={self.dims}, backend={self.backend.name!r}, ninc={self.map.ninc}, "
                f"nstrat={list(s.nstrat) if s else None}, dtype={self.dtype!r})")

    # -- public entry points ---------------------------------------------------------------
    def train(self, calls: int, nitn: int | None = None) -> Result:
        """Spend ``calls`` integrand calls in all on ``nitn`` adapting iterations (default: the
        constructor's ``nitn``), ``calls // nitn`` each (at least 10).

        Returns their inverse-variance weighted average (biased slightly by the adaptation;
        use :meth:`integrate` for the final estimate).
        """
        return self._run(calls, nitn if nitn is not None else self.nitn, adapt=True)

    def integrate(self, calls: int, nitn: int = 5, *, adapt: bool = False) -> Result:
        """Estimate the integral with ``calls`` integrand calls in all, over ``nitn``
        iterations of ``calls // nitn`` calls each (at least 10).

        With ``adapt=False`` (default) the sampler is frozen, the iterations are identically
        distributed and are averaged plainly; ``adapt=True`` keeps adapting (vegas' default
        behaviour, weighted average).
        """
        return self._run(calls, nitn, adapt=check_bool(adapt, "adapt"))

    def __call__(self, calls: int, nitn: int | None = None) -> Result:
        """:meth:`train`: adapting iterations, weighted average. Unlike the ``vegas`` package
        (``neval`` per iteration), ``calls`` is the total over all ``nitn`` iterations."""
        return self.train(calls, nitn)

    def sample(self, n: int, *, stratified: bool | None = None, shuffle: bool = True) -> Batch:
        """``n`` weighted points from the trained sampler, with ``weights.mean()`` ~ integral.

        ``stratified`` (default: when ``n >= ``number of hypercubes) gives every hypercube a
        fixed share of points proportional to the trained allocation (at least one each);
        otherwise points are drawn independently, the hypercube first with that probability.
        Either way ``weights = f(x) / g(x)`` with ``g`` the density of the design, so weighted
        histograms and unweighting work; stratified points are shuffled unless
        ``shuffle=False``. With ``dtype="float32"``, weights and ``f`` that float32 cannot
        hold (an integrand far outside ``[1e-38, 1e38]``) are returned as float64.
        """
        n = check_int(n, "n", 1)
        shuffle = check_bool(shuffle, "shuffle")
        if stratified is not None:
            stratified = check_bool(stratified, "stratified")
        try:
            return self._sample(n, stratified, shuffle)
        except MemoryError as exc:
            raise MemoryError(f"sample({n}) ran out of memory ({exc}); draw fewer points per "
                              "call (e.g. in a loop) or write them to an event file as you go"
                              ) from exc

    def _sample(self, n: int, stratified: bool | None, shuffle: bool) -> Batch:
        be, xp = self.backend, self.backend.xp
        with use(be):
            if self.strat is None:
                nstrat: tuple[int, ...] = (1,) * self.dims
                p_host = np.ones(1)
            else:
                nstrat = self.strat.nstrat
                p_host = be.to_numpy(self.strat.allocation()).astype(np.float64)
            nhcube = p_host.size
            p_host = p_host / p_host.sum()
            dv = self.volume / nhcube
            if stratified is None:
                stratified = n >= nhcube
            if stratified and n < nhcube:
                raise ValueError(f"a stratified sample needs n >= {nhcube} (one point per "
                                 f"hypercube), got n={n}; pass stratified=False")
            if stratified:
                extra = n - nhcube
                r = extra * p_host
                nh_host = np.floor(r).astype(np.int64)
                rest = extra - int(nh_host.sum())
                if rest > 0:
                    nh_host[np.argsort(-(r - nh_host), kind="stable")[:rest]] += 1
                nh_host += 1
                nh = be.asarray(nh_host)
                h = K.cube_index(nh, n)
                share = xp.take(xp.astype(nh, xp.float64), h) / n
            else:
                h = self.rng.categorical(be.asarray(p_host), n)
                share = xp.take(be.asarray(p_host, dtype="float64"), h)
            wdt = be.dtype(self.dtype)
            parts = []
            for i in range(0, n, self.batch_size):
                j = min(i + self.batch_size, n)
                u = self.rng.uniform((j - i, self.dims), self.dtype)
                y = K.stratified_y(h[i:j], u, nstrat)
                x, jac = self.map.forward_jac(y)
                if self.domain is not None:
                    x = self.domain.forward(x)[0]
                f = self.integrand(x, be)    # f / scale
                jac64 = xp.astype(jac, xp.float64) * dv
                weights = xp.astype(f, xp.float64) * jac64 / share[i:j]
                parts.append((x, f, weights, xp.astype(share[i:j] / jac64, wdt)))
            x, f, weights, prob = (parts[0][k] if len(parts) == 1 else
                                   xp.concat([p[k] for p in parts], axis=0) for k in range(4))
            scale = self.integrand.scale      # fixed by the first non-zero batch, maybe above
            if scale == 1.0:
                weights = xp.astype(weights, wdt)
            else:
                f, weights = (unscaled(a, scale, self.dtype, xp)
                              for a in (xp.astype(f, xp.float64), weights))
            if stratified and shuffle:
                perm = xp.argsort(self.rng.uniform(n, "float64"))
                x, f, weights, prob = (xp.take(a, perm, axis=0) for a in (x, f, weights, prob))
            return Batch(x=x, weights=weights, prob=prob, f=f)

    # -- files -----------------------------------------------------------------------------
    def save(self, path: str) -> str:
        """Write the trained sampler (map, stratification, settings, RNG state) to ``path``.

        One ``.npz`` (or ``.safetensors``) file via :mod:`mcint.serialize`: JSON metadata and
        plain arrays, no pickle. The integrand is not saved; pass it to :meth:`load`.
        """
        from .. import serialize

        s = self.strat
        meta = {
            "dims": self.dims, "dtype": self.dtype, "nitn": self.nitn, "ninc": self.max_ninc,
            "alpha": self.alpha, "beta": self.beta, "neval_frac": self.neval_frac,
            "nstrat": None if self._user_nstrat is None else list(self._user_nstrat),
            "nonfinite": self.integrand.nonfinite, "batch_size": self.batch_size,
            "max_neval_hcube": self.max_neval_hcube, "max_nhcube": self.max_nhcube,
            "domain": None if self.domain is None else [
                [float(lo), float(lo + w)] for lo, w in zip(self.domain.low, self.domain.width)],
            "strat": None if s is None else {"nstrat": list(s.nstrat), "neval": s.neval,
                                             "sum_sigf": s.sum_sigf},
            "rng_state": _json_state(self.rng),
        }
        arrays = {"grid": self.map.grid}
        if s is not None:
            arrays["sigf"] = s.sigf
        return serialize.save(path, "vegas", meta, arrays)

    @classmethod
    def load(cls, path: str, integrand: Callable[[Any], Any] | Integrand, *,
             backend: str | Backend | None = None, seed: int | None = None) -> VEGAS:
        """A :class:`VEGAS` restored from :meth:`save` for ``integrand``.

        Without ``seed`` the random stream continues where the saved one stopped (when the
        backend's stream is of the same kind); with ``seed`` it starts afresh.
        """
        from .. import serialize

        meta, arrays = serialize.load(path, expect_kind="vegas")
        where = f"{path}: not a usable VEGAS file"
        meta, grid, sigf = check_stored(meta, arrays, where)
        dims = meta["dims"]
        settings = {k: meta[k] for k in ("domain", "nitn", "alpha", "beta", "neval_frac",
                                          "nstrat", "dtype", "nonfinite", "batch_size",
                                          "max_neval_hcube", "max_nhcube")}
        # built with the saved grid's increments, not the cap ninc: a file's number alone
        # must not decide how much the constructor allocates
        v = serialize.build_from_file(
            lambda: cls(integrand, dims, backend=backend, seed=seed,
                        ninc=grid.shape[1] - 1, **settings),
            lambda: cls(integrand, dims, backend=backend, seed=seed), where,
            "its settings do not build a VEGAS")
        v.max_ninc = meta["ninc"]
        try:  # the map's own checks: finite, increasing from 0 to 1
            v.map = AdaptiveMap(dims, grid=grid, backend=v.backend)
        except ValueError as exc:
            raise serialize.ModelFileError(f"{where}: array 'grid': {exc}") from None
        st = meta["strat"]
        if st is not None:
            try:
                strat = Stratification(tuple(st["nstrat"]), st["neval"],
                                       neval_frac=v.neval_frac, beta=v.beta,
                                       max_neval_hcube=v.max_neval_hcube, backend=v.backend)
            except ValueError as exc:
                raise serialize.ModelFileError(f"{where}: field 'meta.strat': {exc}") from None
            strat.sigf = v.backend.asarray(sigf, dtype="float64")
            strat.sum_sigf = float(st["sum_sigf"])
            v.strat = strat
        if seed is None and meta["rng_state"] is not None:
            try:
                v.rng.state = meta["rng_state"]
            except ValueError:
                pass  # another kind of stream (e.g. saved on CPU, loaded on a GPU)
        return v

    # -- configuration ---------------------------------------------------------------------
    def _configure(self, calls: int) -> Stratification:
        """Strata and map increments for ``calls`` per iteration (kept while unchanged)."""
        nstrat = self._user_nstrat or choose_nstrat(calls, self.dims, self.neval_frac,
                                                    self.beta, self.max_nhcube)
        ninc, nstrat = choose_ninc(calls, nstrat, self.max_ninc)
        old = self.strat
        if old is None or old.nstrat != nstrat or old.neval != calls:
            new = Stratification(nstrat, calls, neval_frac=self.neval_frac, beta=self.beta,
                                 max_neval_hcube=self.max_neval_hcube, backend=self.backend)
            if old is not None and old.nstrat == nstrat:
                new.sigf, new.sum_sigf = old.sigf, old.sum_sigf
            self.strat = new
        if ninc != self.map.ninc:
            self.map.adapt(alpha=0.0, ninc=ninc)
        return self.strat

    def _run(self, calls: int, nitn: int, adapt: bool) -> Result:
        per = _per_iteration(calls, nitn)
        nitn = int(nitn)
        result = Result(weighted=adapt, label="VEGAS " + ("training" if adapt else "integration"))
        kept: list[np.ndarray] = []
        try:
            with use(self.backend):
                self._configure(per)
                for i in range(nitn):
                    # weight diagnostics: every frozen iteration, the last adapting one
                    result.add(self._iteration(adapt, kept if (not adapt or i == nitn - 1)
                                               else None))
            from ..health import diagnose, warn_if_bad

            result.diagnostics = diagnose(np.concatenate(kept))
        except MemoryError as exc:
            what = "train" if adapt else "integrate"
            raise MemoryError(
                f"{what}(calls={calls}) ran out of memory ({exc}): VEGAS evaluates about "
                f"batch_size={self.batch_size} points at a time (pass a smaller batch_size) and "
                f"keeps one float64 weight per call of an iteration for the diagnostics "
                f"({per} calls per iteration: {8 * per / 2**30:.3g} GiB); spend the calls in "
                "several smaller calls or more iterations (nitn)") from exc
        self.history.append(result)
        if not adapt:
            warn_if_bad(result.diagnostics, "VEGAS integral", stacklevel=4)
        return result

    # -- one iteration ---------------------------------------------------------------------
    def _iteration(self, adapt: bool, kept: list[np.ndarray] | None = None) -> IterationResult:
        be, xp = self.backend, self.backend.xp
        strat = self.strat
        assert strat is not None
        nh = strat.allocation()
        nh_host = be.to_numpy(nh)
        # unit volume: the domain's volume multiplies the sums at the end, like the scale
        dv = strat.dv_y
        train_map = adapt and self.alpha > 0
        total = var = 0.0
        neval = 0
        sigma2 = []
        n_kept = len(kept) if kept is not None else 0
        for c0, c1, m in _plan_chunks(nh_host, self.batch_size):
            nh_c = nh[c0:c1]
            hloc = K.cube_index(nh_c, m)
            u = self.rng.uniform((m, self.dims), self.dtype)
            y = K.stratified_y(hloc + c0 if c0 else hloc, u, strat.nstrat)
            x, jac = self.map.forward_jac(y)
            if self.domain is not None:
                x = self.domain.forward(x)[0]
            f = self.integrand(x, be)
            fj = xp.astype(f * jac, xp.float64) * dv
            wf = fj / xp.take(xp.astype(nh_c, xp.float64), hloc)
            s1, v = K.cube_stats(hloc, wf, nh_c, EPSILON, be)
            if kept is not None:
                kept.append(be.to_numpy(wf))
            total += float(xp.sum(s1))
            var += float(xp.sum(v))
            neval += m
            if adapt and strat.adaptive:
                sigma2.append(v)
            if train_map:
                self.map.add_training_data(y, fj * fj)
        if kept is not None:
            # this iteration's terms times its points: event weights whose mean is the estimate
            kept[n_kept:] = [np.concatenate(kept[n_kept:]) * float(neval)]
        if adapt and strat.adaptive:
            strat.update(sigma2[0] if len(sigma2) == 1 else xp.concat(sigma2))
        if train_map:
            self.map.adapt(self.alpha)
        # f / scale on the unit volume kept the sums of squares in range; back to true units
        unit = self.volume * self.integrand.scale
        return IterationResult(total * unit, math.sqrt(max(var, 0.0)) * unit, neval,
                               info={"nstrat": list(strat.nstrat), "ninc": self.map.ninc})


def _per_iteration(calls: int, nitn: int) -> int:
    """Calls per iteration of a budget of ``calls`` over ``nitn`` iterations (at least 10)."""
    calls = check_int(calls, "calls", 10)
    nitn = check_int(nitn, "nitn", 1)
    if calls // nitn < 10:
        raise ValueError(f"calls={calls} over nitn={nitn} iterations gives {calls // nitn} "
                         f"calls per iteration; need at least 10 per iteration (calls >= "
                         f"{10 * nitn}): calls is the total budget of all iterations")
    return calls // nitn


def _checked_meta(meta: dict, where: str) -> dict:
    """A saved VEGAS's settings, each checked for type, range and length (``dims`` entries)."""
    from .. import serialize as sz

    dims = sz.check_field(meta.get("dims"), sz.integer(1), "meta.dims", where)
    axes = sz.ListOf(sz.integer(1), length=dims)
    spec = sz.Record({
        "dims": sz.integer(1), "dtype": sz.choice("float64", "float32"),
        "nitn": sz.integer(1), "ninc": sz.integer(2), "alpha": sz.number(0, ALPHA_MAX),
        "beta": sz.number(0, 1), "neval_frac": sz.number(0, 1), "nstrat": sz.optional(axes),
        "nonfinite": sz.TEXT, "batch_size": sz.integer(1), "max_neval_hcube": sz.integer(2),
        "max_nhcube": sz.integer(1),
        "domain": sz.optional(sz.ListOf(sz.ListOf(sz.number(), length=2), length=dims)),
        "strat": sz.optional(sz.Record({"nstrat": axes, "neval": sz.integer(1),
                                        "sum_sigf": sz.number(0)})),
        "rng_state": sz.optional(sz.RNG_STATE)})
    return sz.check_field(meta, spec, "meta", where)


def check_stored(meta: dict, arrays: dict, where: str
                 ) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """(settings, grid, sigf) of a saved VEGAS after every check that needs no integrand:
    the settings' schema, the arrays' shapes, finite values and the grid's order (increasing
    from 0 to 1). :meth:`VEGAS.load` runs it first, ``mcint info`` runs it alone."""
    from ..serialize import ModelFileError
    from .map import _check_grid

    meta = _checked_meta(meta, where)
    grid, sigf = _saved_arrays(arrays, meta, where)
    try:
        _check_grid(grid, meta["dims"])
    except ValueError as exc:
        raise ModelFileError(f"{where}: array 'grid': {exc}") from None
    return meta, grid, sigf


def _saved_arrays(arrays: dict, meta: dict, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(grid, sigf) of a saved VEGAS, shapes checked against its settings."""
    from ..serialize import ModelFileError, check_finite

    dims, st = meta["dims"], meta["strat"]
    grid, sigf = arrays.get("grid"), arrays.get("sigf")
    if grid is None or grid.dtype.kind != "f" or grid.ndim != 2 or grid.shape[0] != dims \
            or grid.shape[1] < 3:
        got = "nothing" if grid is None else f"{grid.dtype} {grid.shape}"
        raise ModelFileError(f"{where}: array 'grid' must be a float array of shape "
                             f"({dims}, ninc + 1) with ninc >= 2, got {got}")
    nh = None if st is None else math.prod(st["nstrat"])
    if (sigf is None) != (nh is None) or (sigf is not None and (
            sigf.shape != (nh,) or sigf.dtype.kind != "f")):
        got = "nothing" if sigf is None else f"{sigf.dtype} {sigf.shape}"
        raise ModelFileError(f"{where}: array 'sigf' must be " + (
            "absent without field 'meta.strat'" if nh is None else
            f"float ({nh},), one per hypercube of field 'meta.strat'") + f", got {got}")
    if sigf is not None:
        check_finite({"sigf": sigf}, where)
        if (sigf < 0).any():
            raise ModelFileError(f"{where}: array 'sigf' has negative entries")
    return grid, sigf


def _json_state(rng: Any) -> dict | None:
    try:
        return dict(rng.state)
    except Exception:  # a stream without a portable state
        return None


def _plan_chunks(nh: np.ndarray, batch: int) -> list[tuple[int, int, int]]:
    """Split consecutive hypercubes into chunks of about ``batch`` points: (c0, c1, points)."""
    cs = np.cumsum(nh)
    out = []
    c0, base = 0, 0
    while c0 < cs.size:
        c1 = max(int(np.searchsorted(cs, base + batch, side="right")), c0 + 1)
        out.append((c0, c1, int(cs[c1 - 1] - base)))
        base = int(cs[c1 - 1])
        c0 = c1
    return out


def _make_domain(domain: Sequence[tuple[float, float]] | None, dims: int) -> Affine | None:
    if domain is None:
        return None
    d = np.asarray(domain, dtype=np.float64)
    if d.shape != (dims, 2):
        raise ValueError(f"domain must be {dims} (low, high) pairs, got shape {d.shape}")
    if not np.all(np.isfinite(d)) or np.any(d[:, 1] <= d[:, 0]):
        raise ValueError(f"domain needs finite low < high on every axis, got {d.tolist()}")
    return Affine(d[:, 0], d[:, 1])
