"""A collider process from a run card's ``[beam]``, ``[process]`` and ``[cuts]`` sections.

::

    [beam]
    e_cm = 13000.0                 # GeV
    beams = "pp"                   # "pp" or "ppbar"
    pdf = "NNPDF31_nnlo_as_0118"   # an LHAPDF set (LHAPDF_DATA_PATH or a path), or "toy"
    pdf_member = 0
    scale = "partonic_energy"      # GeV, or transverse_energy, transverse_mass,
    # factorisation_scale = 91.1876   half_transverse_mass, partonic_energy

    [process]
    outgoing = [11, -11]           # PDG ids of the final state, in the libraries' leg order
    param_card = "param_card.dat"  # optional, handed to every library
    [[process.subprocess]]
    library = "libffbar_ll.so"     # a UMAMI 1.0 library (loading it runs its code)
    flavours = [[2, -2, 1], [1, -1, 2]]   # (beam-1 parton, beam-2 parton, FLAVOR_INDEX)
    mirror = true                  # add the beam-exchanged initial states (default true)
    alpha_s = false                # pass the set's running alpha_s (default false)
    # per COLOR_INDEX / HELICITY_INDEX of the library, per leg (library order): optional
    color_flows = [[[501, 0], [0, 501], [0, 0], [0, 0]]]
    helicities = [[-1, 1, -1, 1], [1, -1, 1, -1], [-1, 1, 1, -1], [1, -1, -1, 1]]
    [[process.channel]]            # or: topologies = "channels.json" (a list of these tables)
    name = "Z"
    diagram = 1                    # the library's diagram (DIAGRAM_AMP2 priors), optional
    topology = {decay = [0, 1], mass = 91.1876, width = 2.4952, pdg = 23}

    [phasespace]
    bw_cutoff = 15.0               # resonances within 15 widths are written as status-2 lines
    invariant_power = 0.8          # nu of massless s-channel propagators without one
    cut_aware = true               # jets' pT cuts built into t-channel charts (default true)

    [cuts]                         # mcint.collider.ParticleCuts
    sqrt_s_min = 60.0
    pt_min = {lepton = 10.0}

A topology node is a final-state index, ``{decay = [node, node], mass, width, nu, pdg}`` (an
s-channel propagator; with ``pdg`` it is written to event files as a status-2 resonance) or
``{tchain = [node, ...], propagators = [{mass, width, nu}, ...]}``. The partonic
energy is sampled with the root propagator's mapping (``nu = 1`` for a photon), between the
final-state threshold (or ``cuts.sqrt_s_min``) and ``e_cm`` (or ``cuts.sqrt_s_max``).
Paths are relative to the card's folder. Every key is checked, with a "did you mean".
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..phasespace import DiagramMapping, Luminosity, PhaseSpace
from ..phasespace.topology import Decay, Diagram, Propagator, TChain
from .cuts import ParticleCuts
from .events import BW_CUTOFF, Resonance
from .process import Flavour, HadronicProcess, Subprocess, mirrored
from .scales import check_scale

__all__ = ["CardError", "SECTIONS", "load_card", "process_from_sections", "read_topologies"]

#: the sections of a run card that describe the process
SECTIONS = ("beam", "process", "cuts", "phasespace")
_BEAM = ("e_cm", "beams", "pdf", "pdf_member", "scale", "factorisation_scale")
_PROCESS = ("outgoing", "param_card", "subprocess", "channel", "topologies")
_SUB = ("library", "flavours", "mirror", "alpha_s", "color_flows", "helicities")
_CHANNEL = ("name", "diagram", "topology")
_PHASESPACE = ("bw_cutoff", "invariant_power", "cut_aware")
_BEAMS = {"pp": (2212, 2212), "ppbar": (2212, -2212)}


class CardError(ValueError):
    """A run card's process sections cannot be used (names the card and the key)."""


def _keys(table: Any, allowed: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        raise CardError(f"{where} must be a table, got {table!r}")
    for k in table:
        if k not in allowed:
            near = difflib.get_close_matches(str(k), allowed, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise CardError(f"{where}: unknown key {k!r}{hint}; keys: {', '.join(allowed)}")
    return table


def _number(v: Any, where: str, positive: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or \
            (positive and v <= 0):
        raise CardError(f"{where} must be a {'positive ' if positive else ''}number, got {v!r}")
    return float(v)


def _propagator(t: Mapping[str, Any], where: str, nu_default: float | None = None
                ) -> Propagator:
    try:
        nu = t.get("nu")
        mass = _number(t.get("mass", 0.0), f"{where}.mass", positive=False)
        if nu is None and mass == 0.0:
            nu = nu_default
        return Propagator(mass, _number(t.get("width", 0.0), f"{where}.width", positive=False),
                          None if nu is None else _number(nu, f"{where}.nu", positive=False))
    except ValueError as exc:
        raise CardError(f"{where}: {exc}") from None


def _leaves(node: Any) -> tuple[int, ...]:
    if isinstance(node, int):
        return (node,)
    kids = node.children if isinstance(node, Decay) else node.legs
    return tuple(i for k in kids for i in _leaves(k))


def _node(t: Any, where: str, res: list[Resonance] | None = None, parent: int | None = None,
          nu: float | None = None) -> Any:
    """A topology node; ``{decay, pdg}`` nodes are appended to ``res`` (parents first)."""
    res = [] if res is None else res
    if isinstance(t, int) and not isinstance(t, bool):
        return t
    if isinstance(t, Mapping) and "decay" in t:
        _keys(t, ("decay", "mass", "width", "nu", "pdg"), where)
        kids = t["decay"]
        if not isinstance(kids, list) or len(kids) != 2:
            raise CardError(f"{where}.decay must list two nodes, got {kids!r}")
        me = parent
        pdg = t.get("pdg")
        if pdg is not None:
            if isinstance(pdg, bool) or not isinstance(pdg, int) or pdg == 0:
                raise CardError(f"{where}.pdg must be a non-zero PDG id, got {pdg!r}")
            res.append(Resonance(pdg, 0.0, 0.0, (), parent))   # filled in below
            me = len(res) - 1
        node = Decay((_node(kids[0], f"{where}.decay[0]", res, me, nu),
                      _node(kids[1], f"{where}.decay[1]", res, me, nu)),
                     _propagator(t, where, nu))
        if pdg is not None:
            pr = node.propagator
            res[me] = Resonance(pdg, pr.mass, pr.width, _leaves(node), parent)
        return node
    if isinstance(t, Mapping) and "tchain" in t:
        _keys(t, ("tchain", "propagators"), where)
        legs = [_node(x, f"{where}.tchain[{i}]", res, parent, nu)
                for i, x in enumerate(t["tchain"])]
        props = [_propagator(_keys(p, ("mass", "width", "nu"), f"{where}.propagators[{i}]"),
                             f"{where}.propagators[{i}]")
                 for i, p in enumerate(t.get("propagators", []))]
        try:
            return TChain(tuple(legs), tuple(props))
        except ValueError as exc:
            raise CardError(f"{where}: {exc}") from None
    raise CardError(f"{where}: a topology node is a final-state index, {{decay = [a, b], ...}} "
                    f"or {{tchain = [...], propagators = [...]}}; got {t!r}")


def _pdf(beam: Mapping[str, Any], base: Path, where: str) -> tuple[Any, Any, int]:
    """(pdf member, alpha_s, LHAGLUE id) for the beam section."""
    name = beam.get("pdf", "toy")
    if not isinstance(name, str) or not name:
        raise CardError(f"{where}.pdf must be an LHAPDF set name or path, or \"toy\"")
    if name == "toy":
        from ..pdf import AlphaSRunning, ToyPDF

        return ToyPDF(), AlphaSRunning(0.118), 0
    from ..pdf import PDFSet, PDFSetError

    p = Path(name)
    target = str(base / p) if not p.is_absolute() and (base / p).is_dir() else name
    member = beam.get("pdf_member", 0)
    try:
        s = PDFSet.load(target)
        return s.member(member), s.alpha_s, s.lhaglue_id + int(member)
    except (PDFSetError, ValueError, OSError) as exc:
        raise CardError(f"{where}.pdf: {exc}") from None


def process_from_sections(sections: Mapping[str, Any], base_dir: str | Path = ".",
                          where: str = "run card") -> tuple[HadronicProcess, dict[str, Any]]:
    """The :class:`HadronicProcess` of the ``beam``/``process``/``cuts`` tables, and what event
    files need (beams, energies, LHAGLUE id, outgoing, param card text)."""
    from .. import umami

    base = Path(base_dir)
    beam = _keys(sections.get("beam", {}), _BEAM, f"{where} [beam]")
    proc = _keys(sections.get("process"), _PROCESS, f"{where} [process]")
    e_cm = _number(beam.get("e_cm"), f"{where} [beam].e_cm")
    kind = beam.get("beams", "pp")
    if kind not in _BEAMS:
        raise CardError(f"{where} [beam].beams must be one of {', '.join(_BEAMS)}, got {kind!r}")
    try:
        scale = check_scale(beam.get("scale", "partonic_energy"), f"{where} [beam].scale")
        fscale = beam.get("factorisation_scale")
        fscale = None if fscale is None else check_scale(fscale, f"{where} "
                                                                "[beam].factorisation_scale")
    except ValueError as exc:
        raise CardError(str(exc)) from None
    pdf, alpha_s, lhaglue = _pdf(beam, base, f"{where} [beam]")
    outgoing = proc.get("outgoing")
    if not isinstance(outgoing, list) or len(outgoing) < 2 or \
            not all(isinstance(x, int) and not isinstance(x, bool) for x in outgoing):
        raise CardError(f"{where} [process].outgoing must list the final state's PDG ids")
    card = proc.get("param_card")
    card_path = None if card is None else base / str(card)
    if card_path is not None and not card_path.is_file():
        raise CardError(f"{where} [process].param_card {str(card_path)!r} does not exist")
    subs, masses = [], None
    for i, st in enumerate(proc.get("subprocess") or []):
        w = f"{where} [[process.subprocess]] {i}"
        st = _keys(st, _SUB, w)
        lib = st.get("library")
        if not isinstance(lib, str):
            raise CardError(f"{w}.library must name a UMAMI library file")
        try:
            me = umami.load(base / lib, card_path)
        except umami.UmamiError as exc:
            raise CardError(f"{w}: {exc}") from None
        if me.particle_count != 2 + len(outgoing):
            raise CardError(f"{w}: {lib} has {me.particle_count} legs, the process 2 + "
                            f"{len(outgoing)}")
        if masses is None and me.masses is not None:
            masses = [float(m) for m in me.masses[2:]]
        fl = st.get("flavours")
        if not isinstance(fl, list) or not fl or not all(
                isinstance(f, list) and len(f) == 3 and all(isinstance(x, int) for x in f)
                for f in fl):
            raise CardError(f"{w}.flavours must list [beam-1 parton, beam-2 parton, "
                            "FLAVOR_INDEX] triples")
        flavs = [Flavour(a, b, k) for a, b, k in fl]
        if st.get("mirror", True):
            flavs = mirrored(flavs)
        try:
            subs.append(Subprocess(me, flavs, outgoing,
                                   needs_alpha_s=bool(st.get("alpha_s", False)),
                                   color_flows=st.get("color_flows"),
                                   helicities=st.get("helicities")))
        except ValueError as exc:
            raise CardError(f"{w}: {exc}") from None
    if not subs:
        raise CardError(f"{where} [process] needs at least one [[process.subprocess]]")
    masses = masses or [0.0] * len(outgoing)
    cuts_spec = sections.get("cuts", {})
    try:
        cuts = ParticleCuts(outgoing, cuts_spec, f"{where} [cuts]") if cuts_spec else None
    except ValueError as exc:
        raise CardError(str(exc)) from None
    lo = max(sum(masses), float(cuts_spec.get("sqrt_s_min", 0.0)) if cuts_spec else 0.0)
    hi = min(e_cm, float(cuts_spec.get("sqrt_s_max", e_cm)) if cuts_spec else e_cm)
    if lo <= 0:
        raise CardError(f"{where}: a massless final state needs [cuts].sqrt_s_min (the partonic "
                        "energy has no lower limit)")
    ps = _keys(sections.get("phasespace", {}), _PHASESPACE, f"{where} [phasespace]")
    bw = _number(ps.get("bw_cutoff", BW_CUTOFF), f"{where} [phasespace].bw_cutoff")
    nu = ps.get("invariant_power")
    nu = None if nu is None else _number(nu, f"{where} [phasespace].invariant_power",
                                         positive=False)
    cut_aware = ps.get("cut_aware", True)
    if not isinstance(cut_aware, bool):
        raise CardError(f"{where} [phasespace].cut_aware must be true or false, got "
                        f"{cut_aware!r}")
    pt_min = cuts.particle_pt_min() if (cuts is not None and cut_aware) else None
    channels = _channels(proc, base, where)
    spaces, diagrams, names, amp_idx, resonances = [], [], [], [], []
    for i, ch in enumerate(channels):
        w = f"{where} [[process.channel]] {i}" if "channel" in proc else \
            f"{where} [process].topologies {proc['topologies']!r} entry {i}"
        ch = _keys(ch, _CHANNEL, w)
        res: list[Resonance] = []
        try:
            d = Diagram(_node(ch.get("topology"), f"{w}.topology", res, nu=nu), masses)
            root = d.root
            sampler = root.propagator.sampler() if isinstance(root, Decay) else \
                Propagator(nu=1.0).sampler()
            lum = Luminosity(e_cm ** 2, sampler, lo * lo * (1 + 1e-12), hi * hi)
            spaces.append(PhaseSpace(DiagramMapping(d, pt_min=pt_min), e_cm, lum))
        except CardError:
            raise
        except ValueError as exc:
            raise CardError(f"{w}: {exc}") from None
        diagrams.append(d)
        resonances.append(res)
        names.append(str(ch.get("name", f"channel{i}")))
        a = ch.get("diagram")
        if a is not None and (isinstance(a, bool) or not isinstance(a, int) or a < 0):
            raise CardError(f"{w}.diagram must be the library's diagram index (>= 0), got {a!r}")
        amp_idx.append(a)
    # MadGraph's |M_i|^2 priors where every channel names its diagram and every library gives
    # DIAGRAM_AMP2; the propagator products otherwise
    counts = [getattr(sp.matrix_element, "diagram_count", None) for sp in subs]
    use_amp = len(channels) > 1 and all(a is not None for a in amp_idx) and \
        all(c is not None for c in counts)
    if use_amp and max(amp_idx) >= min(counts):
        raise CardError(f"{where}: channel diagram {max(amp_idx)} but a library has only "
                        f"{min(counts)} diagrams")
    hp = HadronicProcess(subs, spaces, pdf, diagrams=diagrams,
                         channel_diagrams=amp_idx if use_amp else None, scale=scale,
                         factorisation_scale=fscale, alpha_s=alpha_s, cuts=cuts,
                         channel_names=names)
    info = {"beams": _BEAMS[kind], "energies": (e_cm / 2, e_cm / 2), "lhaglue": lhaglue,
            "outgoing": list(outgoing), "resonances": resonances, "bw_cutoff": bw,
            "param_card": None if card_path is None else card_path.read_text()}
    return hp, info


def _channels(proc: Mapping[str, Any], base: Path, where: str) -> list[Any]:
    """The channel tables: ``[[process.channel]]`` or the JSON file ``topologies``."""
    if "channel" in proc and "topologies" in proc:
        raise CardError(f"{where} [process]: give [[process.channel]] or topologies, not both")
    if "topologies" in proc:
        import json

        f = proc["topologies"]
        path = base / str(f)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CardError(f"{where} [process].topologies {str(path)!r}: {exc}") from None
        if not isinstance(data, list) or not data:
            raise CardError(f"{where} [process].topologies {str(path)!r} must hold a JSON list "
                            "of channels ({\"name\", \"diagram\", \"topology\"})")
        return data
    channels = proc.get("channel") or []
    if not channels:
        raise CardError(f"{where} [process] needs at least one [[process.channel]] (or "
                        "topologies = \"file.json\")")
    return channels


def read_topologies(path: str | Path, masses: list[float], invariant_power: float | None = None
                    ) -> list[tuple[str, int | None, Diagram, list[Resonance]]]:
    """The channels of a topologies JSON file (as ``topologies = "file.json"`` reads it):
    ``(name, library diagram index or None, Diagram, resonances)`` per channel, with the
    final-state ``masses`` in the library's order."""
    p = Path(path)
    out = []
    for i, ch in enumerate(_channels({"topologies": p.name}, p.parent, str(p))):
        w = f"{p} entry {i}"
        ch = _keys(ch, _CHANNEL, w)
        res: list[Resonance] = []
        try:
            d = Diagram(_node(ch.get("topology"), f"{w}.topology", res, nu=invariant_power),
                        masses)
        except CardError:
            raise
        except ValueError as exc:
            raise CardError(f"{w}: {exc}") from None
        out.append((str(ch.get("name", f"channel{i}")), ch.get("diagram"), d, res))
    return out


def load_card(path: str | Path) -> tuple[HadronicProcess, dict[str, Any]]:
    """Read a run card and build its process (see the module docstring)."""
    from ..tomlio import toml_module

    p = Path(path)
    try:
        toml = toml_module()
    except ImportError as exc:
        raise CardError(str(exc)) from None
    try:
        with open(p, "rb") as fh:
            data = toml.load(fh)
    except (OSError, toml.TOMLDecodeError) as exc:
        raise CardError(f"run card {str(p)!r}: {exc}") from None
    if "process" not in data:
        raise CardError(f"run card {str(p)!r} has no [process] section")
    proc, info = process_from_sections(data, p.parent, f"run card {str(p)!r}")
    info["card"] = p.read_text()
    return proc, info
