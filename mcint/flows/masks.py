"""Coupling masks: which dimensions condition each coupling block and which it transforms.

A mask set is a boolean numpy array of shape ``(layers, dims)``; ``True`` marks a dimension that
is an *input* of the block's conditioner network (left unchanged), ``False`` one that the block
transforms (the convention of MadNIS' ``condition_masks``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["make_masks", "default_layers", "MASK_KINDS"]

MASK_KINDS = ("log", "exchange", "random")


def default_layers(dims: int) -> int:
    """Number of coupling blocks of the "log" masks, used as the default for every kind.

    ``2 * ceil(log2(dims))``: each dimension is transformed conditioned on each other dimension at
    least once (MadNIS' default); at least 2 blocks, and 1 block in one dimension.
    """
    if dims == 1:
        return 1
    return max(2, 2 * math.ceil(math.log2(dims)))


def _log_masks(dims: int) -> np.ndarray:
    # Block pair p splits the dimensions by bit p of their index: every pair of dimensions differs
    # in some bit, so each one conditions the other in some block.
    bits = max(1, math.ceil(math.log2(dims)))
    b = ((np.arange(dims)[None, :] >> np.arange(bits)[:, None]) & 1).astype(bool)
    return np.repeat(b, 2, axis=0) ^ np.tile([False, True], bits)[:, None]


def _half(dims: int) -> np.ndarray:
    return np.arange(dims) < dims // 2


def make_masks(dims: int, kind: Any = "log", layers: int | None = None,
               seed: int | None = 0) -> np.ndarray:
    """Masks of shape ``(layers, dims)``, ``True`` = conditioning input, ``False`` = transformed.

    ``kind``:
    * ``"log"``: binary digits of the dimension index, each block followed by its complement
      (``2 ceil(log2 dims)`` blocks; ``layers``, if given, repeats or truncates this sequence);
    * ``"exchange"``: first half conditions the second half, then the other way round;
    * ``"random"``: a random half conditions the rest, drawn with ``seed``;
    * an array-like of booleans of shape ``(layers, dims)``: used as given.

    In one dimension every block transforms the single dimension (conditioned on nothing but the
    optional condition). Every dimension must be transformed by some block.
    """
    if not isinstance(dims, (int, np.integer)) or isinstance(dims, bool) or dims < 1:
        raise ValueError(f"dims must be a positive integer, got {dims!r}")
    if layers is not None and (not isinstance(layers, (int, np.integer)) or layers < 1):
        raise ValueError(f"layers (number of coupling blocks) must be a positive integer, "
                         f"got {layers!r}")
    if isinstance(kind, str):
        n = default_layers(dims) if layers is None else int(layers)
        if dims == 1:
            m = np.zeros((n, 1), dtype=bool)
        elif kind == "log":
            base = _log_masks(dims)
            m = base[np.arange(n) % base.shape[0]]
        elif kind == "exchange":
            m = np.stack([_half(dims) ^ bool(i % 2) for i in range(n)])
        elif kind == "random":
            rng = np.random.default_rng(seed)
            m = np.stack([_half(dims)[rng.permutation(dims)] for _ in range(n)])
        else:
            raise ValueError(f"unknown mask kind {kind!r}; use one of {MASK_KINDS} or a boolean "
                             f"array of shape (layers, {dims})")
    else:
        m = np.asarray(kind)
        if m.dtype != bool:
            raise TypeError(f"user masks must be a boolean array (True = conditioning input), "
                            f"got dtype {m.dtype}")
        if m.ndim == 1:
            m = m[None, :]
        if m.ndim != 2 or m.shape[1] != dims:
            raise ValueError(f"masks must have shape (layers, {dims}), got {m.shape}")
        if layers is not None and m.shape[0] != layers:
            raise ValueError(f"layers={layers} but {m.shape[0]} masks were given")
    bad = np.flatnonzero(m.all(axis=1))
    if bad.size:
        raise ValueError(f"mask(s) {bad.tolist()} transform no dimension (all True)")
    never = np.flatnonzero(m.all(axis=0))
    if never.size:
        raise ValueError(f"dimension(s) {never.tolist()} are never transformed by any block; "
                         f"add a block whose mask is False there")
    return np.array(m, dtype=bool)
