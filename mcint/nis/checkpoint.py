"""Checkpoints of the neural integrator through :mod:`mcint.serialize` (JSON + arrays, no pickle).

A checkpoint holds everything a continued run needs to repeat an uninterrupted one exactly:
constructor options, flows, VEGAS grids, the channel-weight network, Adam's moments, the
buffer, the random streams' states, the channel history, counters and the step log. Loading
the arrays needs only numpy; continuing to *train* needs torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

KIND = "nis-checkpoint"


class _Fields(dict):
    """The checkpoint's state: a missing entry is a corrupt file, not a ``KeyError``."""

    where = "checkpoint"

    def __missing__(self, key: str) -> Any:
        from ..serialize import ModelFileError

        raise ModelFileError(f"{self.where}: checkpoint state lacks {key!r} (corrupt, or "
                             "written by another mcint version)")


def save_checkpoint(it: Any, path: str | os.PathLike) -> None:
    from .. import serialize

    for k in ("loss", "schedule"):
        if callable(it.options.get(k)):
            # the name is stored; resume() must be given the callable again
            pass
    opts = {k: (getattr(v, "__name__", "callable") if callable(v) else v)
            for k, v in it.options.items()}
    arrays: dict[str, np.ndarray] = {}

    def host(a: Any) -> np.ndarray:
        from ..backends.base import _to_numpy_any

        return np.ascontiguousarray(_to_numpy_any(a))

    for g, s in enumerate(it.samplers):
        if s.flow is not None:
            for name, a in s.flow.arrays().items():
                arrays[f"flow{g}:{name}"] = host(a)
        if s.vmap is not None:
            arrays[f"vmap{g}"] = host(s.vmap.grid)
    if it.cw is not None:
        for name, a in it.cw.arrays().items():
            arrays[f"cw:{name}"] = host(a)
    opt_meta = None
    if it._opt is not None:
        oa, opt_meta = it._opt.state_arrays()
        arrays.update({f"opt:{k}": v for k, v in oa.items()})
    for k, v in it.buffer.data.items():
        arrays[f"buffer:{k}"] = host(v)
    for i, rec in enumerate(it._recent):
        for k, v in rec.items():
            if v is not None:
                arrays[f"recent{i}:{k}"] = host(v)
    c = it.caller
    state = dict(
        step=it.step, beta=it.beta, calls=it.calls, train_calls=it.train_calls, vegas_calls=it.vegas_calls,
        train_time=it.train_time, active=it.active.tolist(), log=it.log,
        history=it.history.to_json(), rng_train=it.rng_train.state,
        rng_sample=it.rng_sample.state, eps_auto=getattr(it, "_eps_auto", None),
        channel_plan=_plan_json(getattr(it, "_channel_plan", None)),
        optimizer=opt_meta, cw_trainable=None if it.cw is None else it.cw.trainable,
        features_dim=it._features_dim, n_recent=len(it._recent),
        recent_fields=sorted(it._recent[0]) if it._recent else [],
        caller_calls=c.total_calls, caller_nonfinite=c.skipped,
        vegas=[s.vmap is not None for s in it.samplers],
        n_channels=it.n_channels, dims=it.dims, pending_train=it._pending_train,
        # who wrote it (e.g. the CLI's integrand name), so a resume can refuse a foreign file
        run_tag=getattr(it, "run_tag", None), sign_zero=it._sign_zero.tolist())
    serialize.save(path, KIND, {"options": opts, "state": state}, arrays)


def load_checkpoint(cls: Any, path: str | os.PathLike, integrand: Any, *, dims: int | None,
                    channels: Sequence[Any] | None, backend: Any, overrides: dict) -> Any:
    from .. import serialize
    from ..backends import get_backend
    from ..vegas import AdaptiveMap

    meta, arrays = serialize.load(path, expect_kind=KIND)
    where = os.fspath(path)
    if not isinstance(meta.get("options"), dict) or not isinstance(meta.get("state"), dict):
        raise serialize.ModelFileError(f"{where}: checkpoint metadata lacks 'options'/'state'")
    opts = dict(meta["options"])
    st = _Fields(meta["state"])
    st.where = where
    opts.update(overrides)
    it = cls(integrand, dims if dims is not None else st["dims"], channels=channels,
             backend=backend, **opts)
    if it.n_channels != st["n_channels"] or it.dims != st["dims"]:
        raise serialize.ModelFileError(
            f"{os.fspath(path)}: checkpoint is for {st['n_channels']} channel(s) in "
            f"{st['dims']} dims, the integrand has {it.n_channels} in {it.dims}")
    nb = get_backend("numpy")
    for g, s in enumerate(it.samplers):
        if s.flow is not None:
            pre = f"flow{g}:"
            got = {k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)}
            expect = {k: (tuple(v.shape), str(np.asarray(nb.to_numpy(v)).dtype))
                      for k, v in s.flow.arrays().items()}
            serialize.check_arrays(got, expect, where=f"{os.fspath(path)} flow {g}")
            s.flow._set_arrays({k: np.array(v) for k, v in got.items()})
        if st["vegas"][g]:
            s.vmap = AdaptiveMap(it.dims, grid=arrays[f"vmap{g}"], backend=nb)
    if st["features_dim"] is not None:
        it._ensure_cw(int(st["features_dim"]))
        cwa = {k[3:]: np.array(v) for k, v in arrays.items() if k.startswith("cw:")}
        it.cw.load_arrays(cwa)
        if not st["cw_trainable"]:
            it.cw.freeze()
    it.step, it.calls = int(st["step"]), int(st["calls"])
    it.beta = float(st["beta"])
    it.train_calls, it.vegas_calls = int(st["train_calls"]), int(st["vegas_calls"])
    it.train_time = float(st["train_time"])
    it.run_tag = st.get("run_tag")
    pt = st.get("pending_train")
    it._pending_train = None if pt is None else {k: int(v) for k, v in pt.items()}
    it.active = np.asarray(st["active"], dtype=bool)
    sz = meta["state"].get("sign_zero")   # absent in checkpoints from before split_sign
    if sz is not None:
        it._sign_zero = np.asarray(sz, dtype=np.int64)
    it.log = list(st["log"])
    from .multichannel import _History

    it.history = _History.from_json(st["history"])
    it.rng_train.state = st["rng_train"]
    it.rng_sample.state = st["rng_sample"]
    if st["eps_auto"] is not None:
        it._eps_auto = float(st["eps_auto"])
    plan = meta["state"].get("channel_plan")   # absent in checkpoints from before
    if plan is not None:
        it._channel_plan = _plan_from_json(plan, it.n_channels, where)
    c = it.caller
    if c.single is not None:
        c.single.calls, c.single.nonfinite_count = int(st["caller_calls"]), int(
            st["caller_nonfinite"])
    else:
        c.calls, c.nonfinite_count = int(st["caller_calls"]), int(st["caller_nonfinite"])
    tb = it._train_backend()
    buf = {k[7:]: tb.asarray(np.array(v)) for k, v in arrays.items() if k.startswith("buffer:")}
    it.buffer.data = buf
    it._recent = []
    for i in range(int(st["n_recent"])):
        rec = {k: None for k in ("u", "channels", "target", "log_q_sample", "alpha_prior",
                                 "features")}
        for k in st["recent_fields"]:
            key = f"recent{i}:{k}"
            if key in arrays:
                rec[k] = tb.asarray(np.array(arrays[key]))
        it._recent.append(rec)
    if st["optimizer"] is not None and it._torch is not None:
        it._leaves()
        oa = {k[4:]: v for k, v in arrays.items() if k.startswith("opt:")}
        it._opt.load_state_arrays(oa, st["optimizer"])
    return it



def _plan_json(plan: dict | None) -> dict | None:
    """The integration plan's per-channel arrays for JSON (NaN, a channel without points,
    as null)."""
    if plan is None:
        return None
    return {k: [None if not np.isfinite(v) else float(v) for v in np.asarray(a)]
            for k, a in plan.items()}


def _plan_from_json(plan: Any, n_channels: int, where: str) -> dict:
    from .. import serialize

    ok = isinstance(plan, dict) and set(plan) == {"stds", "means"} and all(
        isinstance(v, list) and len(v) == n_channels
        and all(x is None or isinstance(x, (int, float)) for x in v) for v in plan.values())
    if not ok:
        raise serialize.ModelFileError(f"{where}: channel_plan must hold 'stds' and 'means', "
                                       f"{n_channels} numbers or nulls each")
    return {k: np.array([np.nan if x is None else float(x) for x in v]) for k, v in plan.items()}
