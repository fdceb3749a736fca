"""Matrix elements from UMAMI 1.0 libraries: MadGraph7 process outputs and other providers.

UMAMI ("Unified MAtrix eleMent Interface") is a C ABI: a shared library exports
``umami_get_meta``, ``umami_initialize``, ``umami_matrix_element`` and ``umami_free`` (and
optionally ``umami_set_parameter`` / ``umami_get_parameter``). :func:`load` opens one with
ctypes (no compiler at run time) and returns a :class:`MatrixElement`, a callable on batches of
momenta::

    me = mcint.umami.load("libprocess.so", param_card="param_card.dat")
    out = me(p)                      # p: (n, me.particle_count, 4) float64, E px py pz
    out["matrix_element"]            # (n,)

Every non-success status becomes one :class:`UmamiError` naming the library, the call and the
status; NaN or inf matrix elements are refused (:class:`UmamiNonFiniteError`), as for any
integrand. The library's handles are per thread (created on first use in each thread), so one
:class:`MatrixElement` can be called from several threads; ctypes releases the GIL during the
call.
"""

from __future__ import annotations

import ctypes
import enum
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .integrand import NonFiniteIntegrandError

__all__ = ["MatrixElement", "Status", "UmamiError", "UmamiNonFiniteError", "load"]

#: the UMAMI major version this module implements (binary compatible within a major version)
MAJOR_VERSION = 1


class Status(enum.IntEnum):
    """``UmamiStatus``."""

    SUCCESS = 0
    ERROR = 1
    NOT_IMPLEMENTED = 2
    UNSUPPORTED_INPUT = 3
    UNSUPPORTED_OUTPUT = 4
    UNINITIALIZED_META = 5
    UNSUPPORTED_META = 6
    MISSING_INPUT = 7


class _Meta(enum.IntEnum):
    DEVICE = 0
    PARTICLE_COUNT = 1
    DIAGRAM_COUNT = 2
    HELICITY_COUNT = 3
    COLOR_COUNT = 4
    MASSES = 5


class _In(enum.IntEnum):
    MOMENTA = 0
    ALPHA_S = 1
    FLAVOR_INDEX = 2
    RANDOM_COLOR = 3
    RANDOM_HELICITY = 4
    RANDOM_DIAGRAM = 5
    HELICITY_INDEX = 6
    DIAGRAM_INDEX = 7
    CHANNEL_INDEX = 8


class _Out(enum.IntEnum):
    MATRIX_ELEMENT = 0
    DIAGRAM_AMP2 = 1
    COLOR_INDEX = 2
    HELICITY_INDEX = 3
    DIAGRAM_INDEX = 4
    GPU_STREAM = 5


_DEVICES = {0: "cpu", 1: "cuda", 2: "hip"}
_OUTPUTS = {"matrix_element": _Out.MATRIX_ELEMENT, "diagram_amp2": _Out.DIAGRAM_AMP2,
            "color_index": _Out.COLOR_INDEX, "helicity_index": _Out.HELICITY_INDEX,
            "diagram_index": _Out.DIAGRAM_INDEX}
_REQUIRED = ("umami_get_meta", "umami_initialize", "umami_matrix_element", "umami_free")


class UmamiError(RuntimeError):
    """A UMAMI library could not be loaded, or one of its calls failed."""


class UmamiNonFiniteError(UmamiError, NonFiniteIntegrandError):
    """The library returned NaN or inf matrix elements."""


def _status_name(code: int) -> str:
    try:
        return Status(code).name
    except ValueError:
        return f"unknown status {code}"


class MatrixElement:
    """A loaded UMAMI library (see :func:`load`).

    Attributes: ``path``, ``particle_count``, ``diagram_count``, ``helicity_count``,
    ``color_count``, ``device`` (``"cpu"``, ``"cuda"`` or ``"hip"``) and ``masses`` (float64
    array of the external masses in GeV); the counts and masses are ``None`` where the library
    does not say.
    """

    def __init__(self, path: str | os.PathLike[str], param_card: str | os.PathLike[str] | None
                 = None) -> None:
        self.path = os.fspath(path)
        self.param_card = None if param_card is None else os.fspath(param_card)
        if not os.path.isfile(self.path):
            raise UmamiError(f"UMAMI library {self.path!r} does not exist or is not a file")
        if self.param_card is not None and not os.path.isfile(self.param_card):
            raise UmamiError(f"param card {self.param_card!r} (for {self.path!r}) does not exist")
        try:
            self._lib = ctypes.CDLL(os.path.abspath(self.path))
        except OSError as exc:
            raise UmamiError(f"cannot load UMAMI library {self.path!r}: {exc}") from None
        missing = [s for s in _REQUIRED if not hasattr(self._lib, s)]
        if missing:
            raise UmamiError(f"{self.path!r} is not a UMAMI {MAJOR_VERSION} library: it does "
                             f"not export {', '.join(missing)}")
        self._bind()
        self.particle_count = self._meta_int(_Meta.PARTICLE_COUNT, required=True)
        if not 2 <= self.particle_count <= 64:
            raise UmamiError(f"{self.path!r}: umami_get_meta(PARTICLE_COUNT) gave "
                             f"{self.particle_count}, not a particle count")
        self.diagram_count = self._meta_int(_Meta.DIAGRAM_COUNT)
        self.helicity_count = self._meta_int(_Meta.HELICITY_COUNT)
        self.color_count = self._meta_int(_Meta.COLOR_COUNT)
        dev = self._meta_int(_Meta.DEVICE)
        if dev is not None and dev not in _DEVICES:
            raise UmamiError(f"{self.path!r}: umami_get_meta(DEVICE) gave unknown device {dev}")
        self.device = "cpu" if dev is None else _DEVICES[dev]
        masses = np.zeros(self.particle_count, dtype=np.float64)
        st = self._get_meta(int(_Meta.MASSES), masses.ctypes.data_as(ctypes.c_void_p))
        self.masses = masses if st == Status.SUCCESS else None
        if st not in (Status.SUCCESS, Status.UNSUPPORTED_META, Status.UNINITIALIZED_META):
            self._check(st, "umami_get_meta(MASSES)")
        self._local = threading.local()
        self._handles: list[ctypes.c_void_p] = []
        self._lock = threading.Lock()
        #: parameters set so far: applied to every instance, also those made later
        self._params: dict[str, complex] = {}
        self._handle()     # a bad param card fails here, at load, not at the first event

    # -- the C functions ------------------------------------------------------------------
    def _bind(self) -> None:
        lib, c = self._lib, ctypes
        self._get_meta = lib.umami_get_meta
        self._get_meta.argtypes = [c.c_int, c.c_void_p]
        self._get_meta.restype = c.c_int
        self._init = lib.umami_initialize
        self._init.argtypes = [c.POINTER(c.c_void_p), c.c_char_p]
        self._init.restype = c.c_int
        self._me = lib.umami_matrix_element
        self._me.argtypes = [c.c_void_p, c.c_size_t, c.c_size_t, c.c_size_t, c.c_size_t,
                             c.POINTER(c.c_int), c.POINTER(c.c_void_p), c.c_size_t,
                             c.POINTER(c.c_int), c.POINTER(c.c_void_p)]
        self._me.restype = c.c_int
        self._free = lib.umami_free
        self._free.argtypes = [c.c_void_p]
        self._free.restype = c.c_int
        self._set = getattr(lib, "umami_set_parameter", None)
        if self._set is not None:
            self._set.argtypes = [c.c_void_p, c.c_char_p, c.c_double, c.c_double]
            self._set.restype = c.c_int
        self._get = getattr(lib, "umami_get_parameter", None)
        if self._get is not None:
            self._get.argtypes = [c.c_void_p, c.c_char_p, c.POINTER(c.c_double),
                                  c.POINTER(c.c_double)]
            self._get.restype = c.c_int

    def _check(self, status: int, call: str) -> None:
        if status != Status.SUCCESS:
            raise UmamiError(f"{self.path!r}: {call} returned {_status_name(status)}")

    def _meta_int(self, key: _Meta, required: bool = False) -> int | None:
        out = ctypes.c_int(0)
        st = self._get_meta(int(key), ctypes.byref(out))
        if st in (Status.UNSUPPORTED_META, Status.UNINITIALIZED_META) and not required:
            return None
        self._check(st, f"umami_get_meta({key.name})")
        if out.value < 0:     # e.g. a library of another UMAMI major version, other key numbers
            raise UmamiError(f"{self.path!r}: umami_get_meta({key.name}) gave {out.value}, not a "
                             f"count (is it a UMAMI {MAJOR_VERSION} library?)")
        return int(out.value)

    def _handle(self) -> ctypes.c_void_p:
        """This thread's instance (UMAMI instances are independent, one per thread)."""
        h = getattr(self._local, "handle", None)
        if h is None:
            h = ctypes.c_void_p()
            card = None if self.param_card is None else os.fsencode(self.param_card)
            self._check(self._init(ctypes.byref(h), card),
                        f"umami_initialize(param_card={self.param_card!r})")
            for name, v in self._params.items():   # set before this thread
                self._check(self._set(h, name.encode(), v.real, v.imag),
                            f"umami_set_parameter({name!r})")
            with self._lock:
                self._handles.append(h)
            self._local.handle = h
        return h

    # -- parameters -------------------------------------------------------------------------
    def set_parameter(self, name: str, value: complex) -> None:
        """Set a model parameter in every instance (this thread's and those made later)."""
        if self._set is None:
            raise UmamiError(f"{self.path!r} does not export umami_set_parameter")
        v = complex(value)
        self._handle()
        with self._lock:
            for h in self._handles:
                self._check(self._set(h, name.encode(), v.real, v.imag),
                            f"umami_set_parameter({name!r})")
        self._params[name] = v

    def get_parameter(self, name: str) -> complex:
        """A model parameter's value."""
        if self._get is None:
            raise UmamiError(f"{self.path!r} does not export umami_get_parameter")
        re, im = ctypes.c_double(), ctypes.c_double()
        self._check(self._get(self._handle(), name.encode(), ctypes.byref(re), ctypes.byref(im)),
                    f"umami_get_parameter({name!r})")
        return complex(re.value, im.value)

    # -- evaluation ---------------------------------------------------------------------------
    def __call__(self, momenta: Any, *, alpha_s: Any = None, flavor: Any = None,
                 random_helicity: Any = None, random_color: Any = None,
                 random_diagram: Any = None, outputs: Sequence[str] = ("matrix_element",)
                 ) -> dict[str, np.ndarray]:
        """Evaluate a batch.

        ``momenta``: (n, particle_count, 4) float64, (E, px, py, pz), incoming legs first.
        ``alpha_s`` (float or (n,)), ``flavor`` (int or (n,), the library's flavour index),
        ``random_*`` ((n,) uniform numbers for the library's helicity, colour and diagram
        choices) are passed only when given. Returns numpy arrays: ``"matrix_element"`` (n,),
        ``"diagram_amp2"`` (n, diagram_count), ``"helicity_index"`` / ``"color_index"`` /
        ``"diagram_index"`` (n,) int.
        """
        if self.device != "cpu":
            raise UmamiError(f"{self.path!r} is a {self.device} library: mcint.umami passes host "
                             "(numpy) arrays and calls CPU libraries only")
        p = np.asarray(momenta, dtype=np.float64)
        if p.ndim != 3 or p.shape[1:] != (self.particle_count, 4):
            raise ValueError(f"momenta for {self.path!r} must have shape (n, "
                             f"{self.particle_count}, 4), got {p.shape}")
        n = p.shape[0]
        outs = tuple(outputs)
        unknown = [o for o in outs if o not in _OUTPUTS]
        if unknown or not outs:
            raise ValueError(f"unknown UMAMI outputs {unknown}; choose from {sorted(_OUTPUTS)}")
        if "diagram_amp2" in outs and not self.diagram_count:
            raise UmamiError(f"{self.path!r} does not give its diagram count: no diagram_amp2")
        result = {o: self._out_array(o, n) for o in outs}
        if n == 0:
            return {o: self._shape_out(o, a) for o, a in result.items()}
        if not np.all(np.isfinite(p)):
            raise ValueError(f"momenta for {self.path!r} contain NaN or inf")
        # column-major with the event index contiguous: (component, particle, event)
        keep = [np.ascontiguousarray(p.transpose(2, 1, 0))]
        keys = [int(_In.MOMENTA)]
        for key, val, dt in ((_In.ALPHA_S, alpha_s, np.float64),
                             (_In.FLAVOR_INDEX, flavor, np.intc),
                             (_In.RANDOM_HELICITY, random_helicity, np.float64),
                             (_In.RANDOM_COLOR, random_color, np.float64),
                             (_In.RANDOM_DIAGRAM, random_diagram, np.float64)):
            if val is not None:
                keep.append(self._per_event(val, n, dt, key.name.lower()))
                keys.append(int(key))
        out_keys = [int(_OUTPUTS[o]) for o in outs]
        in_ptrs = (ctypes.c_void_p * len(keep))(*[a.ctypes.data for a in keep])
        out_ptrs = (ctypes.c_void_p * len(outs))(*[result[o].ctypes.data for o in outs])
        st = self._me(self._handle(), n, n, 0, len(keys), (ctypes.c_int * len(keys))(*keys),
                      in_ptrs, len(out_keys), (ctypes.c_int * len(out_keys))(*out_keys),
                      out_ptrs)
        self._check(st, f"umami_matrix_element(n={n}, inputs="
                        f"{[_In(k).name for k in keys]}, outputs={list(outs)})")
        out = {o: self._shape_out(o, a) for o, a in result.items()}
        for name in ("matrix_element", "diagram_amp2"):
            if name in out and not np.all(np.isfinite(out[name])):
                bad = int(np.count_nonzero(~np.isfinite(out[name])))
                raise UmamiNonFiniteError(f"{self.path!r}: umami_matrix_element returned {bad} "
                                          f"non-finite {name} value(s) for {n} events")
        return out

    def _out_array(self, name: str, n: int) -> np.ndarray:
        if name == "diagram_amp2":
            return np.zeros((int(self.diagram_count or 0), n), dtype=np.float64)
        if name == "matrix_element":
            return np.zeros(n, dtype=np.float64)
        return np.zeros(n, dtype=np.intc)

    @staticmethod
    def _shape_out(name: str, a: np.ndarray) -> np.ndarray:
        if name == "diagram_amp2":
            return np.ascontiguousarray(a.T)          # stored diagram-major: stride * d + e
        return a.astype(np.int64) if a.dtype == np.intc else a

    def _per_event(self, val: Any, n: int, dtype: Any, name: str) -> np.ndarray:
        a = np.asarray(val)
        if a.ndim == 0:
            a = np.full(n, a)
        if a.shape != (n,):
            raise ValueError(f"{name} for {self.path!r} must be a number or shape ({n},), got "
                             f"{a.shape}")
        if dtype is np.intc:
            if not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"{name} must be integers, got {a.dtype}")
        elif not np.all(np.isfinite(a)):
            raise ValueError(f"{name} for {self.path!r} contains NaN or inf")
        return np.ascontiguousarray(a, dtype=dtype)

    # -- clean-up ---------------------------------------------------------------------------
    def close(self) -> None:
        """Free every instance (also done when the object is garbage collected)."""
        with self._lock:
            handles, self._handles = self._handles, []
        for h in handles:
            self._free(h)
        self._local = threading.local()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def __repr__(self) -> str:
        return (f"MatrixElement({self.path!r}, particles={self.particle_count}, "
                f"diagrams={self.diagram_count}, device={self.device!r})")


def load(path: str | os.PathLike[str], param_card: str | os.PathLike[str] | None = None
         ) -> MatrixElement:
    """Open the UMAMI library at ``path`` and initialise it with ``param_card``."""
    return MatrixElement(path, param_card)
