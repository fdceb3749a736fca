"""The Berends-Giele recursion of one process, planned once and run on batches of events.

:class:`Program` turns the colour-ordered partial amplitudes a process needs into a list of
nodes (external wavefunctions, off-shell currents, amplitudes) in dependency order, shared
between orderings. A node only carries the helicity states of the legs it contains
("helicity recycling"): a two-gluon current has at most four states whatever the number of
configurations summed; gather indices map a parent's states to its children's. Running the
program is plain array code (no loop over events), so it works on every array-API backend and
torch can differentiate through it.

Node kinds: ``ext`` (a leg's wavefunctions), ``g`` (gluon current; ``amputated`` without its
propagator, for the last vertex), ``q`` (row current of the outgoing quark absorbing ordered
gluons and possibly the W), ``w`` (the W current from the lepton pair), ``amp`` (a partial
amplitude).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from . import currents as C
from .spinors import complex_of, mdot

__all__ = ["Program"]


@dataclass
class _Node:
    kind: str
    legs: tuple[int, ...]  # legs whose helicities (and momenta) the node depends on
    configs: list[tuple[int, ...]] = field(default_factory=list)
    terms: list[tuple[str, list[int], list[Any]]] = field(default_factory=list)
    leg: int = -1  # ext nodes
    amputated: bool = False
    pick: Any = None  # ext and w nodes: which of the (+1, -1) wavefunctions each state uses
    w_legs: tuple[int, int] = (-1, -1)  # w node: (lepton, antilepton)


class Program:
    """The recursion plan of one process.

    Parameters
    ----------
    kinds: per leg ``"g"``, ``"q"`` (outgoing quark), ``"qb"`` (outgoing antiquark), ``"l"``,
        ``"lb"`` (lepton, antilepton), all outgoing.
    helicities: the configurations summed, ``(H, n)`` of +1 / -1.
    orders: one tuple of leg indices per basis element: for pure gluons the full colour order
        ``(first, ..., last)``; for a quark line the gluons in string order.
    """

    def __init__(self, kinds: Sequence[str], helicities: Sequence[tuple[int, ...]],
                 orders: Sequence[tuple[int, ...]]) -> None:
        self.kinds = tuple(kinds)
        self.helicities = np.asarray(helicities, dtype=np.int64).reshape(len(helicities),
                                                                         len(self.kinds))
        self.nodes: list[_Node] = []
        self._memo: dict[Any, int] = {}
        self._index: dict[tuple[str, str], dict[int, Any]] = {}  # gather indices per device
        find = lambda k: [i for i, kk in enumerate(self.kinds) if kk == k]
        self.quark = (find("q") or [-1])[0]
        self.antiquark = (find("qb") or [-1])[0]
        self.leptons = tuple(find("l") + find("lb"))
        self.has_w = bool(self.leptons)
        self.amplitudes = [self._amplitude(tuple(o)) for o in orders]

    # -- planning ----------------------------------------------------------------------------
    def _add(self, key: Any, node: _Node) -> int:
        full = tuple(sorted(node.legs))
        node.legs = full
        pos = [int(i) for i in full]
        seen: dict[tuple[int, ...], int] = {}
        for row in self.helicities[:, pos]:
            seen.setdefault(tuple(int(h) for h in row), len(seen))
        node.configs = list(seen)
        self.nodes.append(node)
        self._memo[key] = len(self.nodes) - 1
        return len(self.nodes) - 1

    def _gather(self, parent: _Node, child: int) -> Any:
        """Indices of the child's states for each parent state (``None``: the identity)."""
        c = self.nodes[child]
        where = [parent.legs.index(leg) for leg in c.legs]
        lookup = {cfg: i for i, cfg in enumerate(c.configs)}
        idx = [lookup[tuple(cfg[w] for w in where)] for cfg in parent.configs]
        if idx == list(range(len(c.configs))):
            return None
        return np.asarray(idx, dtype=np.int64)

    def _finish(self, key: Any, node: _Node, terms: list[tuple[str, list[int]]]) -> int:
        i = self._add(key, node)
        node.terms = [(kind, kids, [self._gather(node, k) for k in kids]) for kind, kids in terms]
        return i

    def _ext(self, leg: int) -> int:
        key = ("ext", leg)
        if key not in self._memo:
            node = _Node("ext", (leg,), leg=leg)
            self._add(key, node)
            if node.configs != [(1,), (-1,)]:
                node.pick = np.asarray([0 if c[0] > 0 else 1 for c in node.configs])
        return self._memo[key]

    def _gluon(self, seq: tuple[int, ...], amputated: bool = False) -> int:
        if len(seq) == 1 and not amputated:
            return self._ext(seq[0])
        key = ("g", seq, amputated)
        if key not in self._memo:
            terms = [("v3", [self._gluon(seq[:k]), self._gluon(seq[k:])])
                     for k in range(1, len(seq))]
            terms += [("v4", [self._gluon(seq[:j]), self._gluon(seq[j:k]), self._gluon(seq[k:])])
                      for j in range(1, len(seq) - 1) for k in range(j + 1, len(seq))]
            self._finish(key, _Node("g", seq, amputated=amputated), terms)
        return self._memo[key]

    def _w(self) -> int:
        key = ("w",)
        if key not in self._memo:
            node = _Node("w", self.leptons)
            self._finish(key, node, [])
            lep, anti = (self.leptons if self.kinds[self.leptons[0]] == "l"
                         else self.leptons[::-1])
            node.w_legs = (lep, anti)
            # per state, which of the (+1, -1) wavefunctions of the lepton and antilepton
            node.pick = tuple(np.asarray([0 if c[node.legs.index(leg)] > 0 else 1
                                          for c in node.configs]) for leg in (lep, anti))
        return self._memo[key]

    def _quark(self, seq: tuple[int, ...], w: bool) -> int:
        if not seq and not w:
            return self._ext(self.quark)
        key = ("q", seq, w)
        if key not in self._memo:
            terms = [("qg", [self._quark(seq[:k], w), self._gluon(seq[k:])])
                     for k in range(len(seq))]
            if w:
                terms.append(("qw", [self._quark(seq, False), self._w()]))
            legs = (self.quark,) + seq + (self.leptons if w else ())
            self._finish(key, _Node("q", legs), terms)
        return self._memo[key]

    def _amplitude(self, order: tuple[int, ...]) -> int:
        key = ("amp", order)
        if key in self._memo:
            return self._memo[key]
        if self.quark < 0:  # pure gluons: the amputated current of all but the last, . eps_last
            terms = [("ag", [self._gluon(order[:-1], amputated=True), self._ext(order[-1])])]
        else:
            v = self._ext(self.antiquark)
            terms = [("aq", [self._quark(order[:k], self.has_w), self._gluon(order[k:]), v])
                     for k in range(len(order))]
            if self.has_w:
                terms.append(("aw", [self._quark(order, False), self._w(), v]))
        legs = tuple(range(len(self.kinds)))
        return self._finish(key, _Node("amp", legs), terms)

    # -- running -----------------------------------------------------------------------------
    def run(self, momenta: Any, wavefunctions: dict[int, tuple[Any, ...]], mw: float = 0.0,
            ww: float = 0.0) -> Any:
        """Partial amplitudes ``(n, H, n_orders)`` complex.

        ``momenta``: all-outgoing momenta ``(n, legs, 4)`` real; ``wavefunctions[leg]``: four
        components ``(2, n)`` complex, states ``+1, -1`` (the lepton pair's W current uses
        them too).
        """
        xp = array_namespace(momenta)
        dev = device(momenta)
        index = self._index.setdefault((xp.__name__, str(dev)), {})

        def take(a: Any, idx: Any) -> Any:
            """Gather helicity states (axis 0) of a current, a tuple or a single array."""
            if idx is None:
                return a
            key = id(idx)  # the index arrays live as long as the program
            if key not in index:
                index[key] = xp.asarray(idx, device=dev)
            if isinstance(a, tuple):
                return tuple(xp.take(c, index[key], axis=0) for c in a)
            return xp.take(a, index[key], axis=0)

        legs_p = [tuple(momenta[:, i, mu] for mu in range(4)) for i in range(momenta.shape[1])]
        mom_cache: dict[tuple[int, ...], tuple[Any, Any, Any]] = {}

        def momentum(legs: tuple[int, ...]) -> tuple[Any, Any, Any]:
            """``(P real, P complex (1, n) components, P^2 complex (1, n))`` of legs."""
            if legs not in mom_cache:
                p = legs_p[legs[0]]
                for leg in legs[1:]:
                    p = tuple(a + b for a, b in zip(p, legs_p[leg]))
                pc = tuple(complex_of(c)[None, :] for c in p)
                mom_cache[legs] = (p, pc, complex_of(mdot(p, p))[None, :])
            return mom_cache[legs]

        vals: list[Any] = []
        for node in self.nodes:
            if node.kind == "ext":
                vals.append(take(wavefunctions[node.leg], node.pick))
            elif node.kind == "g":
                # sum_V3 + (f4 / f3) sum_V4, then one multiplication by f3 / P^2
                acc = None
                for kind, ids, gat in node.terms:
                    if kind == "v3":
                        (l, r), (gl, gr) = ids, gat
                        pl = momentum(self.nodes[l].legs)[1]
                        pr = momentum(self.nodes[r].legs)[1]
                        # the P.J contractions on the children's own (fewer) states
                        a = mdot(tuple(x + 2 * y for x, y in zip(pl, pr)), vals[l])
                        b = mdot(tuple(2 * x + y for x, y in zip(pl, pr)), vals[r])
                        t = C.v3(take(vals[l], gl), take(vals[r], gr), pl, pr, take(a, gl),
                                 take(b, gr))
                    else:
                        t = C.v4(*(take(vals[k], g) for k, g in zip(ids, gat)),
                                 scale=C.GLUON_V4 / C.GLUON_V3)
                    acc = t if acc is None else tuple(x + y for x, y in zip(acc, t))
                f = C.GLUON_V3 if node.amputated else C.GLUON_V3 / momentum(node.legs)[2]
                vals.append(tuple(c * f for c in acc))
            elif node.kind == "q":
                acc = None
                for kind, ids, gat in node.terms:
                    args = [take(vals[k], g) for k, g in zip(ids, gat)]
                    t = C.quark_gluon(*args) if kind == "qg" else C.quark_w(*args)
                    acc = t if acc is None else tuple(x + y for x, y in zip(acc, t))
                _, p, p2 = momentum(node.legs)
                vals.append(C.propagate_row(acc, p, p2))
            elif node.kind == "w":
                lep, anti = node.w_legs
                pw = tuple(a + b for a, b in zip(legs_p[lep], legs_p[anti]))
                row = take(wavefunctions[lep], node.pick[0])
                col = take(wavefunctions[anti], node.pick[1])
                vals.append(C.w_current(row, col, mdot(pw, pw)[None, :], mw, ww))
            else:  # amp
                acc = None
                for kind, ids, gat in node.terms:
                    args = [take(vals[k], g) for k, g in zip(ids, gat)]
                    if kind == "ag":
                        t = mdot(*args)
                    elif kind == "aq":
                        t = C.amplitude_gluon(*args)
                    else:
                        t = C.amplitude_w(*args)
                    acc = t if acc is None else acc + t
                vals.append(acc)
        out = xp.stack([vals[i] for i in self.amplitudes], axis=-1)  # (H, n, orders)
        return xp.permute_dims(out, (1, 0, 2))

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.kind] = counts.get(n.kind, 0) + 1
        return f"Program(nodes={counts}, helicities={len(self.helicities)})"
