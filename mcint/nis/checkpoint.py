"""Checkpoints of the neural integrator through :mod:`mcint.serialize` (JSON + arrays, no pickle).

A checkpoint holds everything a continued run needs to repeat an uninterrupted one exactly:
constructor options, flows, VEGAS grids, the channel-weight network, Adam's moments, the
buffer, the random streams' states, the channel history, counters and the step log. Loading
the arrays needs only numpy; continuing to *train* needs torch.
"""

from __future__ import annotations

import inspect
import math
import os
import re
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from .. import serialize
from ..serialize import (
    BOOL,
    RNG_STATE,
    TEXT,
    AnyOf,
    DictOf,
    ListOf,
    ModelFileError,
    Record,
    Spec,
    check_field,
    choice,
    integer,
    number,
    optional,
)

KIND = "nis-checkpoint"


def save_checkpoint(it: Any, path: str | os.PathLike) -> None:
    """Write integrator ``it`` (its parts' state, its flat options) to ``path``."""
    # callables (loss, schedule) are stored by name; resume() must be given them again
    opts = {k: (getattr(v, "__name__", "callable") if callable(v) else v)
            for k, v in it.options.items()}
    arrays: dict[str, np.ndarray] = {}

    def host(a: Any) -> np.ndarray:
        from ..backends.base import _to_numpy_any

        return np.ascontiguousarray(_to_numpy_any(a))

    m, t, book = it.model, it.trainer, it.book
    for g, s in enumerate(m.samplers):
        if s.flow is not None:
            for name, a in s.flow.arrays().items():
                arrays[f"flow{g}:{name}"] = host(a)
        if s.vmap is not None:
            arrays[f"vmap{g}"] = host(s.vmap.grid)
    if m.cw is not None:
        for name, a in m.cw.arrays().items():
            arrays[f"cw:{name}"] = host(a)
    opt_meta = None
    if t.opt is not None:
        oa, opt_meta = t.opt.state_arrays()
        arrays.update({f"opt:{k}": v for k, v in oa.items()})
    for k, v in t.buffer.data.items():
        arrays[f"buffer:{k}"] = host(v)
    for i, rec in enumerate(t.recent):
        for k, v in rec.items():
            if v is not None:
                arrays[f"recent{i}:{k}"] = host(v)
    c = it.caller
    state = dict(
        step=t.step, beta=t.beta, calls=it.counter.total, train_calls=t.train_calls,
        vegas_calls=t.vegas_calls, train_time=t.train_time, active=book.active.tolist(),
        log=t.log, history=book.history.to_json(), rng_train=t.rng.state,
        rng_sample=it.estimator.rng.state, eps_auto=it.plan.eps_auto,
        channel_plan=_plan_json(it.plan.channel_plan),
        optimizer=opt_meta, cw_trainable=None if m.cw is None else m.cw.trainable,
        features_dim=m.features_dim, n_recent=len(t.recent),
        recent_fields=sorted(t.recent[0]) if t.recent else [],
        caller_calls=c.total_calls, caller_nonfinite=c.skipped,
        vegas=[s.vmap is not None for s in m.samplers],
        n_channels=it.n_channels, dims=it.dims, pending_train=t.pending,
        # who wrote it (e.g. the CLI's integrand name), so a resume can refuse a foreign file
        run_tag=it.run_tag, sign_zero=book.sign_zero.tolist())
    serialize.save(path, KIND, {"options": opts, "state": state}, arrays)


def load_checkpoint(cls: Any, path: str | os.PathLike, integrand: Any, *, dims: int | None,
                    channels: Sequence[Any] | None, backend: Any, overrides: dict) -> Any:
    """The integrator (of class ``cls``) saved in ``path``, every field checked first;
    ``overrides`` replace stored options (e.g. callables stored by name)."""
    meta, arrays = serialize.load(path, expect_kind=KIND)
    where = os.fspath(path)
    opts, st = check_stored(meta, arrays, where)
    opts.update(overrides)
    d = dims if dims is not None else st["dims"]

    def make(**o: Any) -> Any:
        return cls(integrand, d, channels=channels, backend=backend, **o)

    # the check of the caller's own arguments builds no flows: their size is the file's
    it = serialize.build_from_file(
        lambda: make(**opts), lambda: make(**{"flow": False, **overrides}), where,
        "its options do not build an Integrator (callables given as loss/schedule must be "
        "given to resume() again)")
    if it.n_channels != st["n_channels"] or it.dims != st["dims"]:
        raise ModelFileError(
            f"{where}: checkpoint is for {st['n_channels']} channel(s) in {st['dims']} dims, "
            f"the integrand has {it.n_channels} in {it.dims}")
    _restore_networks(it, st, arrays, where)
    _restore_counters(it, st, where)
    _restore_batches(it, st, arrays, where)
    _restore_optimizer(it, st, arrays, where)
    return it


def check_stored(meta: dict, arrays: dict, where: str) -> tuple[dict, dict]:
    """(options, state) of a checkpoint after every check that needs no integrand: the
    metadata's schema, the networks' sizes, and the stored values -- parameters, VEGAS grids
    and Adam's moments finite, second moments >= 0, training points in the unit cube.
    :func:`load_checkpoint` runs it first, ``mcint info`` runs it alone."""
    opts, st = _checked_meta(meta, where)
    _check_network_sizes(opts, st, arrays, where)
    _check_values(arrays, where)
    return opts, st


def _check_values(arrays: dict, where: str) -> None:
    from ..vegas.map import _check_grid

    params = {k: v for k, v in arrays.items()
              if re.match(r"(flow\d+|cw|opt):", k) and v.dtype.kind == "f"}
    serialize.check_finite(params, where)
    for k, v in params.items():
        if re.match(r"opt:v\d+$", k) and (v < 0).any():   # Adam divides by its square root
            _fail(where, f"array '{k}' (a second moment) has negative entries")
    for k, v in arrays.items():
        if re.fullmatch(r"vmap\d+", k) and v.dtype.kind == "f" and v.ndim == 2:
            try:   # the map's own checks: finite, increasing from 0 to 1
                _check_grid(v, v.shape[0])
            except ValueError as exc:
                _fail(where, f"array '{k}': {exc}")
        if re.fullmatch(r"(buffer|recent\d+):u", k) and v.dtype.kind == "f" \
                and not ((v >= 0) & (v <= 1)).all():
            _fail(where, f"array '{k}' has points outside [0, 1] (or NaN)")


# -- what a checkpoint's metadata must hold ----------------------------------------------------

_SIZE = integer(1, 1 << 20)
_COUNT = integer(0)
_ANY = Spec("any JSON value", lambda v: True)
_FLOW = Record({
    "bins": integer(1, 1 << 16), "layers": optional(integer(1, 1 << 12)),
    "hidden": ListOf(_SIZE, max_len=64), "coupling": choice("rqs", "affine"),
    "masks": AnyOf(TEXT, ListOf(ListOf(AnyOf(BOOL, integer(0, 1))))), "activation": TEXT,
    "dtype": choice("float32", "float64"), "condition_dims": integer(0, 1 << 20),
    "min_bin_width": number(0, 1), "min_bin_height": number(0, 1),
    "min_bin_derivative": number(0, 1), "affine_clamp": number(0),
}, optional=("bins", "layers", "hidden", "coupling", "masks", "activation", "dtype",
             "condition_dims", "min_bin_width", "min_bin_height", "min_bin_derivative",
             "affine_clamp"))
#: the Integrator's options by type and range (the constructor checks the rest)
_OPTIONS = {
    "seed": optional(integer(0)), "loss": optional(TEXT),
    "batch_size": optional(AnyOf(integer(8), ListOf(integer(8), length=2))),
    "lr": optional(number(0)), "schedule": TEXT, "clip": optional(number(0)),
    "dtype": choice("float32", "float64"), "flow": optional(AnyOf(BOOL, _FLOW)),
    "channel_weights": BOOL, "prior": optional(AnyOf(TEXT, ListOf(number(0)))),
    "cw_hidden": ListOf(_SIZE, max_len=64), "freeze_channel_weights": optional(_COUNT),
    "groups": optional(AnyOf(BOOL, ListOf(_COUNT))), "defensive": number(0, 1),
    "defensive_integrate": AnyOf(choice("auto"), number(0, 1)), "defensive_min": number(0, 1),
    "vegas_init": optional(BOOL), "vegas_fraction": number(0, 1),
    "vegas_ninc": optional(integer(2, 1 << 20)), "buffer_capacity": optional(_COUNT),
    "buffered_steps": optional(_COUNT), "uniform_ratio": number(0, 1),
    "history_length": _COUNT, "drop_threshold": number(0, 1), "drop_interval": integer(1),
    "temper": number(0, 1), "nonfinite": choice("raise", "zero", "skip"),
    "defensive_in_loss": optional(BOOL), "split_sign": AnyOf(BOOL, choice("auto")),
    "sign_probe": integer(1), "refine_loss": optional(AnyOf(TEXT, BOOL)),
    "buffered_until": optional(number(0, 1)),
}
_BATCH_FIELDS = ("u", "channels", "target", "log_q_sample", "alpha_prior", "features")
_PENDING = Record({k: _COUNT for k in ("calls", "n_fresh", "start_step", "done", "budget")},
                  optional=("budget",))
_OPTIMIZER = Record({"steps": ListOf(optional(number(0))), "lr": number(0),
                     "base_lr": number(0), "skipped": _COUNT})
_LOG_VALUE = Spec("a number, true/false or null",
                  lambda v: v is None or isinstance(v, (bool, int, float)))
#: state entries that checkpoints of older mcint versions lack
_NEWER_STATE = ("sign_zero", "channel_plan", "pending_train", "run_tag")


def _state_spec(n: int) -> Record:
    """The state's fields; per-channel lists have ``n`` (the checkpoint's channels) entries."""
    per_channel = ListOf(number(finite=False), length=n)
    return Record({
        "step": _COUNT, "beta": number(0, 1), "calls": _COUNT, "train_calls": _COUNT,
        "vegas_calls": _COUNT, "train_time": number(0), "active": ListOf(BOOL, length=n),
        "log": ListOf(DictOf(_LOG_VALUE)), "rng_train": RNG_STATE, "rng_sample": RNG_STATE,
        "history": Record({"length": _COUNT, "means": ListOf(per_channel),
                           "variances": ListOf(per_channel),
                           "counts": ListOf(ListOf(number(0), length=n))}),
        "eps_auto": optional(number(0, 1)),
        "channel_plan": optional(Record({"stds": ListOf(optional(number(0)), length=n),
                                         "means": ListOf(optional(number()), length=n)})),
        "optimizer": optional(_OPTIMIZER), "cw_trainable": optional(BOOL),
        "features_dim": optional(integer(1, 1 << 20)), "n_recent": integer(0, 1 << 16),
        "recent_fields": ListOf(choice(*_BATCH_FIELDS)), "caller_calls": _COUNT,
        "caller_nonfinite": _COUNT, "vegas": ListOf(BOOL), "n_channels": integer(1),
        "dims": integer(1), "pending_train": optional(_PENDING),
        "run_tag": optional(Record({}, extra=True)),
        "sign_zero": ListOf(integer(-1), length=n),
    }, optional=_NEWER_STATE)


def _checked_meta(meta: dict, where: str) -> tuple[dict, dict]:
    """(options, state) of a checkpoint, every field checked for type, range and length before
    anything is built from them."""
    check_field(meta, Record({"options": Record({}, extra=True),
                              "state": Record({}, extra=True)}), "meta", where)
    # an option the table does not know but the constructor takes: the constructor checks it
    from .options import FLAT

    known = [*FLAT, "seed", "nonfinite", "value_scale"]
    spec = Record({k: _OPTIONS.get(k, _ANY) for k in known}, optional=known)
    opts = dict(check_field(meta["options"], spec, "options", where))
    st = meta["state"]
    check_field(st.get("n_channels"), integer(1), "state.n_channels", where)
    check_field(st, _state_spec(st["n_channels"]), "state", where)
    h, pt = st["history"], st.get("pending_train")
    if not len(h["means"]) == len(h["variances"]) == len(h["counts"]):
        _fail(where, "field 'state.history' has means, variances and counts of different "
                     "lengths")
    if pt is not None and pt["done"] > pt["n_fresh"]:
        _fail(where, f"field 'state.pending_train' has done={pt['done']} > "
                     f"n_fresh={pt['n_fresh']}")
    if not any(st["active"]):
        _fail(where, "field 'state.active' marks no channel active")
    return opts, st


def _fail(where: str, msg: str) -> NoReturn:
    raise ModelFileError(f"{where}: {msg}")


def _mlp_size(sizes: Sequence[int]) -> int:
    """Weights and biases of a dense network with layer sizes ``sizes``."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _elements(arrays: dict, prefix: str) -> int:
    return sum(int(np.size(a)) for k, a in arrays.items() if k.startswith(prefix))


def _check_network_sizes(opts: dict, st: dict, arrays: dict, where: str) -> None:
    """Refuse options that describe networks far bigger than the arrays the file holds.

    Checked before the integrator is built: building allocates the networks the options
    describe, so a few edited numbers could otherwise demand any amount of memory. The
    estimate over-counts every layer (all inputs, the widest output), within ~16x of the truth.
    """
    from ..flows import Flow

    slack = 1 << 20   # ~1e6 parameters: never worth refusing
    flow = opts.get("flow")
    if flow is not False:
        f = flow if isinstance(flow, dict) else {}
        default = {k: p.default for k, p in inspect.signature(Flow.__init__).parameters.items()}
        dims, bins = st["dims"], f.get("bins", default["bins"])
        masks = f.get("masks")
        layers = len(masks) if isinstance(masks, list) else (
            f.get("layers") or 2 * max(1, math.ceil(math.log2(max(dims, 2)))))
        out = dims * (3 * bins + 1) if f.get("coupling", "rqs") == "rqs" else 2 * dims
        need = layers * _mlp_size([dims + f.get("condition_dims", 0),
                                   *f.get("hidden", default["hidden"]), out])
        have = _elements(arrays, "flow0:")
        if need > 16 * have + slack:
            _fail(where, f"field 'options.flow' describes flows of ~{need} parameters each, "
                         f"the file holds {have} for the first")
    fd = st["features_dim"]
    if fd is not None:
        need = _mlp_size([fd, *opts.get("cw_hidden", [32, 32]), st["n_channels"]])
        have = _elements(arrays, "cw:")
        if need > 16 * have + slack:
            _fail(where, f"fields 'state.features_dim' and 'options.cw_hidden' describe a "
                         f"channel-weight network of ~{need} parameters, the file holds {have}")


# -- restoring ---------------------------------------------------------------------------------

def _prefixed(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def _expect(arrays: dict) -> dict:
    """Name -> (shape, dtype string) of a network's current arrays (any backend)."""
    from ..backends.base import _to_numpy_any

    return {k: (tuple(np.shape(v)), str(np.asarray(_to_numpy_any(v)).dtype))
            for k, v in arrays.items()}


def _checked(arrays: dict, prefix: str, expect: dict, where: str, what: str) -> dict:
    """The arrays under ``prefix``: names, shapes and dtypes as ``expect``, values finite."""
    got = _prefixed(arrays, prefix)
    serialize.check_arrays(got, expect, where=f"{where} {what}")
    serialize.check_finite({prefix + k: v for k, v in got.items()}, where)
    return {k: np.array(v) for k, v in got.items()}


def _restore_networks(it: Any, st: dict, arrays: dict, where: str) -> None:
    """Flows, VEGAS grids and the channel-weight network: shapes checked, values finite."""
    from ..backends import get_backend
    from ..vegas import AdaptiveMap

    m = it.model
    if len(st["vegas"]) != len(m.samplers):
        _fail(where, f"field 'state.vegas' has {len(st['vegas'])} entries for "
                     f"{len(m.samplers)} flow group(s)")
    for g, s in enumerate(m.samplers):
        if s.flow is not None:
            s.flow._set_arrays(_checked(arrays, f"flow{g}:", _expect(s.flow.arrays()), where,
                                        f"flow {g}"))
        if st["vegas"][g]:
            grid = arrays.get(f"vmap{g}")
            if grid is None or grid.dtype.kind != "f":
                _fail(where, f"array 'vmap{g}' (the VEGAS grid of flow group {g}) is missing "
                             "or not a float array")
            try:
                s.vmap = AdaptiveMap(it.dims, grid=grid, backend=get_backend("numpy"))
            except ValueError as exc:  # the grid's own checks: shape, finite, increasing
                _fail(where, f"array 'vmap{g}': {exc}")
    fd = st["features_dim"]
    if fd is None:
        return
    if not it.multichannel:
        _fail(where, "field 'state.features_dim' is set, but the integrand has one channel")
    m.ensure_weights(fd)
    m.cw.load_arrays(_checked(arrays, "cw:", _expect(m.cw.arrays()), where,
                              "channel weights"))
    if not st["cw_trainable"]:
        m.cw.freeze()


def _restore_counters(it: Any, st: dict, where: str) -> None:
    """Counters, log, channel history, random streams and the integration plan."""
    from .multichannel import _History

    t, book = it.trainer, it.book
    t.step, it.counter.total, t.beta = st["step"], st["calls"], float(st["beta"])
    t.train_calls, t.vegas_calls = st["train_calls"], st["vegas_calls"]
    t.train_time = float(st["train_time"])
    it.run_tag = st.get("run_tag")
    pt = st.get("pending_train")
    t.pending = None if pt is None else dict(pt)
    book.active = np.asarray(st["active"], dtype=bool)
    if st.get("sign_zero") is not None:   # absent in checkpoints from before split_sign
        book.sign_zero = np.asarray(st["sign_zero"], dtype=np.int64)
    t.log = [dict(e) for e in st["log"]]
    book.history = _History.from_json(st["history"])
    for name, rng in (("rng_train", t.rng), ("rng_sample", it.estimator.rng)):
        try:
            rng.state = st[name]
        except ValueError as exc:  # a stream of another kind (the numbers are checked)
            _fail(where, f"field 'state.{name}': {exc}")
    if st["eps_auto"] is not None:
        it.plan.eps_auto = float(st["eps_auto"])
    plan = st.get("channel_plan")   # absent in checkpoints from before
    if plan is not None:
        it.plan.channel_plan = {k: np.array([np.nan if x is None else float(x) for x in v])
                                for k, v in plan.items()}
    c = it.caller
    counter = c.single if c.single is not None else c
    counter.calls, counter.nonfinite_count = st["caller_calls"], st["caller_nonfinite"]


def _restore_batches(it: Any, st: dict, arrays: dict, where: str) -> None:
    """The buffer and the recent training batches, checked against the integrator."""
    from ..backends import get_backend

    t = it.trainer
    tb = t.tb if t.tb is not None else get_backend("numpy")
    buf = _check_batch(it, _prefixed(arrays, "buffer:"), "buffer:", st, where)
    if buf and len(buf["target"]) > t.buffer.capacity:
        _fail(where, f"array 'buffer:target' holds {len(buf['target'])} points, more than "
                     f"the buffer's capacity {t.buffer.capacity}")
    t.buffer.data = {k: tb.asarray(np.array(v)) for k, v in buf.items()}
    t.recent = []
    for i in range(st["n_recent"]):
        pre = f"recent{i}:"
        got = {k: arrays[pre + k] for k in st["recent_fields"] if pre + k in arrays}
        # the recent batches are concatenated: each must have the first one's fields
        if i and set(got) != {k for k, v in t.recent[0].items() if v is not None}:
            _fail(where, f"arrays '{pre}*' have other fields than 'recent0:*'")
        rec: dict[str, Any] = dict.fromkeys(_BATCH_FIELDS)
        rec.update({k: tb.asarray(np.array(v))
                    for k, v in _check_batch(it, got, pre, st, where, need=True).items()})
        t.recent.append(rec)


def _check_batch(it: Any, batch: dict, prefix: str, st: dict, where: str,
                 need: bool = False) -> dict:
    """``batch`` (training points), unless a field, shape or value is wrong (or it is empty
    and ``need``); its arrays are named ``prefix + field``."""
    if not batch and not need:
        return batch
    unknown = sorted(set(batch) - set(_BATCH_FIELDS))
    if unknown or "target" not in batch or "u" not in batch:
        _fail(where, f"arrays '{prefix}*': unknown fields {unknown}, or no 'target' or 'u'")
    m = int(batch["target"].shape[0]) if batch["target"].ndim == 1 else -1
    shapes = {"u": (m, it.dims), "channels": (m,), "target": (m,), "log_q_sample": (m,),
              "alpha_prior": (m, it.n_channels), "features": (m, st["features_dim"])}
    for k, a in batch.items():
        kind = "iu" if k == "channels" else "f"
        if a.shape != shapes[k] or a.dtype.kind not in kind:
            _fail(where, f"array '{prefix}{k}' is {a.dtype} {a.shape}, expected "
                         f"{'an integer' if k == 'channels' else 'a float'} array of shape "
                         f"{shapes[k]}")
    u, c, ap = batch.get("u"), batch.get("channels"), batch.get("alpha_prior")
    if u is not None and not ((u >= 0) & (u <= 1)).all():
        _fail(where, f"array '{prefix}u' has points outside [0, 1] (or NaN)")
    if c is not None and c.size and not (c.min() >= 0 and c.max() < it.n_channels):
        _fail(where, f"array '{prefix}channels' has channel indices outside "
                     f"[0, {it.n_channels})")
    if ap is not None and not (np.isfinite(ap) & (ap >= 0)).all():
        _fail(where, f"array '{prefix}alpha_prior' has negative or non-finite entries")
    return batch


def _restore_optimizer(it: Any, st: dict, arrays: dict, where: str) -> None:
    """Adam's moments, one pair per trainable array that has taken a step."""
    meta = st["optimizer"]
    t = it.trainer
    if meta is None or t.tb is None:
        return
    params = t.leaves()
    if len(meta["steps"]) != len(params):
        _fail(where, f"field 'state.optimizer.steps' has {len(meta['steps'])} entries for "
                     f"{len(params)} trainable arrays")
    expect = {}
    for i, p in enumerate(params):
        if meta["steps"][i] is not None:
            shape, dt = tuple(p.shape), str(p.dtype).replace("torch.", "")
            expect.update({f"m{i}": (shape, dt), f"v{i}": (shape, dt)})
    moments = _checked(arrays, "opt:", expect, where, "optimizer")
    for k, v in moments.items():
        if k.startswith("v") and (v < 0).any():  # Adam divides by its square root
            _fail(where, f"array 'opt:{k}' (a second moment) has negative entries")
    t.opt.load_state_arrays(moments, meta)


def _plan_json(plan: dict | None) -> dict | None:
    """The integration plan's per-channel arrays for JSON (NaN, a channel without points,
    as null)."""
    if plan is None:
        return None
    return {k: [None if not np.isfinite(v) else float(v) for v in np.asarray(a)]
            for k, a in plan.items()}
