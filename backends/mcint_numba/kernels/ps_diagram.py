"""A whole :class:`~mcint.phasespace.DiagramMapping` channel in one pass per event
(reference: :func:`mcint.phasespace.chains.diagram_forward`).

The diagram is compiled once (per diagram and remainder sampler) into a short program that
mirrors the reference's recursion step for step: the same invariants with the same limits, the
random numbers taken in the same depth-first order, the blocks of :mod:`.ps_math` (two-body
decay, t-channel block, samplers); constants are hoisted out of the event loop and limits nothing
reads are dropped. A small interpreter runs it event by event on a register file of scalars and
four-vectors, so no ``(n,)`` temporaries are made. Diagrams with a sampler other
than the built-in ones, and anything but numpy float64, return ``NotImplemented``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from mcint.phasespace.topology import Decay, Diagram, TChain

from .. import kernel
from . import ps_math as M
from . import ps_tchannel

# opcodes; operands in the int row after the opcode, constants in the float row
VADD, VSUB, MASS2, SQRT, CONST, SUBSQ, ADDSQRT, SQ, SAMPLE, DECAY, TCHAN = range(11)
ZERO = 0  # scalar register 0 holds 0.0


class Unsupported(Exception):
    """The diagram uses a sampler the fused kernels do not know."""


class _Program:
    """Emit the instructions of one channel (see :meth:`DiagramMapping._generate`)."""

    def __init__(self, diagram: Diagram, rest: tuple[int, float, float],
                 first_cut: float = 0.0) -> None:
        self.d, self.rest, self.first_cut = diagram, rest, first_cut
        self.ints: list[list[int]] = []
        self.floats: list[list[float]] = []
        self.n_s, self.n_v, self.col = 1, 2, 0  # V[0] = p_a, V[1] = p_b
        self.out = [-1] * len(diagram.masses)

    def emit(self, op: int, ints: list[int], floats: tuple[float, ...] = ()) -> None:
        self.ints.append([op, *ints] + [0] * (10 - len(ints)))
        self.floats.append([*floats] + [0.0] * (4 - len(floats)))

    def s(self) -> int:
        self.n_s += 1
        return self.n_s - 1

    def v(self) -> int:
        self.n_v += 1
        return self.n_v - 1

    def take(self, k: int) -> int:
        self.col += k
        return self.col - k

    def op(self, op: int, *args: int, c: float = 0.0) -> int:
        d = self.s()
        self.emit(op, [d, *args], (c,))
        return d

    def const(self, c: float) -> int:
        return self.op(CONST, c=c)

    def code(self, sampler: Any) -> tuple[int, float, float]:
        code = M.sampler_code(sampler)
        if code is None:
            raise Unsupported(repr(sampler))
        return code

    def sample(self, code: tuple[int, float, float], lo: int, hi: int) -> int:
        d = self.s()
        self.emit(SAMPLE, [d, self.take(1), lo, hi, code[0]], code[1:])
        return d

    # -- the reference's recursion, as instructions --------------------------------------
    def child_m2(self, node: Any, lo: Any, hi: Any) -> int:
        """``lo``/``hi``: callables emitting the limits (only for propagators, as the
        reference evaluates them only there)."""
        if isinstance(node, int):
            return self.const(self.d.masses[node] ** 2)
        return self.sample(self.code(node.propagator.sampler()), lo(), hi())

    def place(self, node: Any, v: int, s: int) -> None:
        if isinstance(node, int):
            self.out[node] = v
        else:
            self.decay(node, v, s)

    def decay(self, node: Decay, vp: int, s: int | None = None) -> None:
        a, b = node.children
        if s is None:
            s = self.op(MASS2, vp)
        rs = self.op(SQRT, s)
        ma, mb = self.d.min_mass(a), self.d.min_mass(b)
        ma2 = self.child_m2(a, lambda: self.const(ma ** 2),
                            lambda: self.op(SUBSQ, rs, ZERO, c=mb))
        mb2 = self.child_m2(b, lambda: self.const(mb ** 2),
                            lambda: self.op(SUBSQ, rs, self.op(SQRT, ma2), c=0.0))
        va, vb = self.v(), self.v()
        self.emit(DECAY, [self.take(2), vp, ma2, mb2, s, va, vb])
        self.place(a, va, ma2)
        self.place(b, vb, mb2)

    def tchain(self, node: TChain) -> None:
        legs, n_legs = node.legs, len(node.legs)
        vsum = self.v()
        self.emit(VADD, [vsum, 0, 1])
        rs = self.op(SQRT, self.op(MASS2, vsum))
        mins = [self.d.min_mass(leg) for leg in legs]
        m2, used = [], ZERO
        for j, leg in enumerate(legs):
            rest_min = sum(mins[j + 1:])
            m2.append(self.child_m2(leg, lambda j=j: self.const(mins[j] ** 2),
                                    lambda u=used, c=rest_min: self.op(SUBSQ, rs, u, c=c)))
            used = self.op(ADDSQRT, used, m2[-1])
        rest, cur = [], rs
        for i in range(n_legs - 2):
            acc = ZERO
            for j in range(i + 1, n_legs):
                acc = self.op(ADDSQRT, acc, m2[j])
            lo = self.op(SQ, acc)
            hi = self.op(SUBSQ, cur, self.op(SQRT, m2[i]), c=0.0)
            rest.append(self.sample(self.rest, lo, hi))
            cur = self.op(SQRT, rest[-1])
        pa_i, p_rest = 0, -1
        for i in range(n_legs - 1):
            mr2 = rest[i] if i < n_legs - 2 else m2[n_legs - 1]
            prop = node.propagators[i]
            code = self.code(prop.sampler())
            vl, vr = self.v(), self.v()
            cut = self.first_cut if (i == 0 and node is self.d.root) else 0.0
            self.emit(TCHAN, [self.take(2), pa_i, 1, m2[i], mr2, code[0], vl, vr],
                      (code[1], code[2], prop.mass ** 2, cut))
            self.place(legs[i], vl, m2[i])
            vn = self.v()
            self.emit(VSUB, [vn, pa_i, vl])
            pa_i, p_rest = vn, vr
        self.place(legs[-1], p_rest, m2[-1])


def _reads_writes(row: list[int]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Registers an instruction reads and writes, as ``("s"|"v", index)``."""
    op, a, b, c, d, e, f, g = row[:8]
    if op in (VADD, VSUB):
        return [("v", b), ("v", c)], [("v", a)]
    if op == MASS2:
        return [("v", b)], [("s", a)]
    if op in (SQRT, SQ):
        return [("s", b)], [("s", a)]
    if op == CONST:
        return [], [("s", a)]
    if op in (SUBSQ, ADDSQRT):
        return [("s", b), ("s", c)], [("s", a)]
    if op == SAMPLE:
        return [("s", c), ("s", d)], [("s", a)]
    if op == DECAY:
        return [("v", b), ("s", c), ("s", d), ("s", e)], [("v", f), ("v", g)]
    return [("v", b), ("v", c), ("s", d), ("s", e)], [("v", row[7]), ("v", row[8])]  # TCHAN


def _optimise(ints: list[list[int]], out: list[int]) -> tuple[list[int], list[int]]:
    """Indices of the instructions to run once (constants) and per event (the live rest).

    The reference evaluates some limits that only propagators use (e.g. the running mass sum
    of a t-channel line of bare particles); without a reader they go. Samplers and blocks
    always stay: they take random numbers and add to the weight.
    """
    live = {("v", v) for v in out}
    keep = []
    for k in range(len(ints) - 1, -1, -1):
        reads, writes = _reads_writes(ints[k])
        if ints[k][0] in (SAMPLE, DECAY, TCHAN) or any(w in live for w in writes):
            keep.append(k)
            live.update(reads)
    keep.reverse()
    once = [k for k in keep if ints[k][0] == CONST]
    return once, [k for k in keep if ints[k][0] != CONST]


@functools.lru_cache(maxsize=256)
def compile_diagram(diagram: Diagram, rest: tuple[int, float, float], first_cut: float = 0.0
                    ) -> tuple[Any, ...] | None:
    """``(ints, floats, n_scalar, n_vector, out_registers, n_columns, n_once)``, or ``None``
    for a diagram with a sampler the kernels do not know; the first ``n_once`` instructions are
    the constants (run once per call). ``first_cut``: the pT cut of a root t-channel chain's
    first block (``DiagramMapping``'s ``pt_min``, 0: none)."""
    prog = _Program(diagram, rest, first_cut)
    try:
        if isinstance(diagram.root, Decay):
            v = prog.v()
            prog.emit(VADD, [v, 0, 1])
            prog.decay(diagram.root, v)
        else:
            prog.tchain(diagram.root)
    except Unsupported:
        return None
    once, per_event = _optimise(prog.ints, prog.out)
    order = once + per_event
    out = (np.array([prog.ints[k] for k in order], dtype=np.int64),
           np.array([prog.floats[k] for k in order], dtype=np.float64),
           prog.n_s, prog.n_v, np.array(prog.out, dtype=np.int64), prog.col, len(once))
    for a in (out[0], out[1], out[4]):
        a.setflags(write=False)
    return out


@M.jit
def run_program(r, pa, pb, ins, cst, n_s, n_v, out_reg, n_once, out, lw):  # pragma: no cover
    """Run a compiled channel on every event; ``out (n, n_final, 4)`` may be a view."""
    S = np.zeros(n_s)
    V = np.zeros((n_v, 4))
    for k in range(n_once):  # constants: the same for every event
        S[ins[k, 1]] = cst[k, 0]
    for ev in range(r.shape[0]):
        for c in range(4):
            V[0, c], V[1, c] = pa[ev, c], pb[ev, c]
        w = 0.0
        for k in range(n_once, ins.shape[0]):
            op, a, b, c = ins[k, 0], ins[k, 1], ins[k, 2], ins[k, 3]
            if op == VADD:
                for j in range(4):
                    V[a, j] = V[b, j] + V[c, j]
            elif op == VSUB:
                for j in range(4):
                    V[a, j] = V[b, j] - V[c, j]
            elif op == MASS2:
                S[a] = V[b, 0] * V[b, 0] - V[b, 1] * V[b, 1] - V[b, 2] * V[b, 2] \
                    - V[b, 3] * V[b, 3]
            elif op == SQRT:
                S[a] = math.sqrt(S[b])
            elif op == CONST:
                S[a] = cst[k, 0]
            elif op == SUBSQ:
                d = S[b] - S[c] - cst[k, 0]
                S[a] = d * d
            elif op == ADDSQRT:
                S[a] = S[b] + math.sqrt(S[c])
            elif op == SQ:
                S[a] = S[b] * S[b]
            elif op == SAMPLE:  # d, column, lo, hi, kind
                s, ld = M.sample_invariant(ins[k, 5], cst[k, 0], cst[k, 1], r[ev, b], S[c],
                                           S[ins[k, 4]])
                S[a] = s
                w += ld - M.LOG_2PI
            elif op == DECAY:  # column, parent, m1sq, m2sq, s, v1, v2
                vp, s, m1sq, m2sq = b, S[ins[k, 5]], S[c], S[ins[k, 4]]
                v1, v2 = ins[k, 6], ins[k, 7]
                e, x, y, z = M.decay_momentum(r[ev, a], r[ev, a + 1], V[vp, 0], V[vp, 1],
                                              V[vp, 2], V[vp, 3], s, m1sq, m2sq)
                V[v1, 0], V[v1, 1], V[v1, 2], V[v1, 3] = e, x, y, z
                V[v2, 0], V[v2, 1] = V[vp, 0] - e, V[vp, 1] - x
                V[v2, 2], V[v2, 3] = V[vp, 2] - y, V[vp, 3] - z
                w += M.decay_log_weight(s, m1sq, m2sq)
            else:  # TCHAN: column, p_a, p_b, m1sq, m2sq, kind, v1, v2
                va, vb, v1, v2 = b, c, ins[k, 7], ins[k, 8]
                e, x, y, z, lwt = M.t_channel(
                    r[ev, a], r[ev, a + 1], V[va, 0], V[va, 1], V[va, 2], V[va, 3],
                    V[vb, 0], V[vb, 1], V[vb, 2], V[vb, 3], S[ins[k, 4]], S[ins[k, 5]],
                    ins[k, 6], cst[k, 0], cst[k, 1], cst[k, 2], cst[k, 3])
                V[v1, 0], V[v1, 1], V[v1, 2], V[v1, 3] = e, x, y, z
                for j in range(4):
                    V[v2, j] = (V[va, j] + V[vb, j]) - V[v1, j]
                w += lwt
        for i in range(out_reg.shape[0]):
            for j in range(4):
                out[ev, i, j] = V[out_reg[i], j]
        lw[ev] = w


def lone_t_channel(prog: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """``(column, m1sq, m2sq, kind, c0, c1, prop_m2, swap)`` when the program is one 2 -> 2
    t-channel block of ``p_a, p_b`` into two external particles (a 2 -> 2 t-channel diagram),
    else ``None``. That program runs block-wise (:func:`.ps_tchannel.rows`, the lone block's
    vectorised loops) instead of event by event: the same formulas, and the same weight."""
    ins, cst, _, _, out_reg, _, n_once = prog
    if ins.shape[0] != n_once + 1 or out_reg.shape[0] != 2:
        return None
    row = ins[n_once]
    if row[0] != TCHAN or row[2] != 0 or row[3] != 1 or cst[n_once, 3] != 0.0:
        return None
    consts = {int(ins[k, 1]): float(cst[k, 0]) for k in range(n_once)}
    consts[ZERO] = 0.0
    m1, m2 = consts.get(int(row[4])), consts.get(int(row[5]))
    v1, v2 = int(row[7]), int(row[8])
    if m1 is None or m2 is None or sorted(out_reg.tolist()) != sorted([v1, v2]):
        return None
    c = cst[n_once]
    return (int(row[1]), m1, m2, int(row[6]), float(c[0]), float(c[1]), float(c[2]),
            int(out_reg[0]) != v1)


def run(prog: tuple[Any, ...], r: Any, pa: Any, pb: Any, out: Any, lw: Any) -> None:
    """Run a compiled channel on every event (see :func:`run_program`)."""
    lone = lone_t_channel(prog)
    if lone is None:
        run_program(r, pa, pb, *prog[:5], prog[6], out, lw)
        return
    col, m1, m2, kind, c0, c1, prop_m2, swap = lone
    o1, o2 = (out[:, 1, :], out[:, 0, :]) if swap else (out[:, 0, :], out[:, 1, :])
    ps_tchannel.rows(r[:, col], r[:, col + 1], pa, pb, np.array([m1]), 0, np.array([m2]), 0,
                     kind, c0, c1, prop_m2, o1, o2, lw)


def program_for(mapping: Any) -> tuple[Any, ...] | None:
    """The compiled program of a ``DiagramMapping`` (exact type), or ``None``."""
    from mcint.phasespace.chains import DiagramMapping

    if type(mapping) is not DiagramMapping:
        return None
    rest = M.sampler_code(mapping.rest_sampler)
    root = mapping.diagram.root
    cut = (mapping.first_block_pt_min(root) or 0.0) if isinstance(root, TChain) else 0.0
    return None if rest is None else compile_diagram(mapping.diagram, rest, cut)


@kernel("phasespace-diagram-forward")
def diagram_forward(r: Any, pa: Any, pb: Any, mapping: Any) -> Any:
    prog = program_for(mapping)
    if prog is None or not (M.is_f64(pa, None, 4) and M.is_f64(pb, pa.shape[0], 4)
                            and M.is_f64(r, pa.shape[0], None) and r.shape[1] >= prog[5]):
        return NotImplemented
    n = r.shape[0]
    out, lw = np.empty((n, prog[4].shape[0], 4)), np.empty(n)
    run(prog, r, pa, pb, out, lw)
    return out, lw
