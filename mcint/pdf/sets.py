"""An LHAPDF set as a whole: its ``.info`` file, members, LHAGLUE ids and running alpha_s.

``PDFSet.load("NNPDF31_nnlo_as_0118")`` finds the set through ``LHAPDF_DATA_PATH`` (or takes a
set directory), reads ``NAME/NAME.info`` (YAML) and offers:

* :meth:`PDFSet.member` -- member ``k`` as an :class:`~mcint.pdf.LHAGrid` (``xfxQ2``);
* :attr:`PDFSet.lhaglue_id` -- ``SetIndex`` (+ member), what LHE files record as PDFSUP;
* :meth:`PDFSet.alpha_s` -- the set's running coupling: its ``AlphaS_Qs`` / ``AlphaS_Vals`` grid
  (``AlphaS_Type: ipol``) or the RGE from ``AlphaS_MZ`` at ``AlphaS_OrderQCD`` with the set's
  quark masses (``ode``/``analytic``, and sets without a grid);
* :attr:`PDFSet.flavours`, :attr:`PDFSet.particle` (the beam hadron's PDG id).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .alphas import AlphaSGrid, AlphaSRunning
from .lhagrid import LHAGrid

__all__ = ["PDFSet", "PDFSetError", "find_set_dir"]


class PDFSetError(ValueError):
    """A PDF set that cannot be found or whose ``.info`` file is unusable (names the file)."""


def find_set_dir(name: str | os.PathLike[str]) -> Path:
    """The directory of set ``name``: a path to a set directory, or a name under
    ``LHAPDF_DATA_PATH`` (``os.pathsep``-separated)."""
    p = Path(name)
    if p.is_dir():
        return p
    paths = [d for d in os.environ.get("LHAPDF_DATA_PATH", "").split(os.pathsep) if d]
    for d in paths:
        cand = Path(d) / str(name)
        if cand.is_dir():
            return cand
    where = ", ".join(paths) if paths else "nowhere: LHAPDF_DATA_PATH is not set"
    raise PDFSetError(f"PDF set {str(name)!r} not found (searched {where}); set "
                      "LHAPDF_DATA_PATH to the directory holding the set")


@dataclass
class PDFSet:
    """An LHAPDF set read from its directory (see the module docstring)."""

    name: str
    path: Path
    info: dict[str, Any]
    _members: dict[int, LHAGrid] = field(default_factory=dict, repr=False)
    _alpha_s: Any = field(default=None, repr=False)

    @classmethod
    def load(cls, name: str | os.PathLike[str]) -> PDFSet:
        """Find the set and read its ``.info`` file."""
        d = find_set_dir(name)
        info_file = d / f"{d.name}.info"
        if not info_file.is_file():
            raise PDFSetError(f"PDF set directory {str(d)!r} has no {info_file.name}")
        import yaml

        try:
            info = yaml.safe_load(info_file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise PDFSetError(f"{str(info_file)!r} is not a readable LHAPDF info file: "
                              f"{exc}") from None
        if not isinstance(info, dict):
            raise PDFSetError(f"{str(info_file)!r} is not an LHAPDF info file (no key: value "
                              "entries)")
        s = cls(d.name, d, info)
        s._validate(info_file)
        return s

    def _validate(self, where: Path) -> None:
        def need_int(key: str, default: int | None = None) -> int:
            v = self.info.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int):
                raise PDFSetError(f"{str(where)!r}: {key} must be an integer, got {v!r}")
            return v

        if need_int("NumMembers", 1) < 1:
            raise PDFSetError(f"{str(where)!r}: NumMembers must be >= 1")
        need_int("SetIndex", 0)
        fl = self.info.get("Flavors", [])
        if not isinstance(fl, list) or not all(isinstance(f, int) for f in fl):
            raise PDFSetError(f"{str(where)!r}: Flavors must be a list of PDG ids, got {fl!r}")
        for key in ("AlphaS_MZ", "MZ"):
            v = self.info.get(key)
            if v is not None and not (isinstance(v, (int, float)) and 0 < v):
                raise PDFSetError(f"{str(where)!r}: {key} must be a positive number, got {v!r}")

    # -- what the set says ------------------------------------------------------------------
    @property
    def num_members(self) -> int:
        return int(self.info.get("NumMembers", 1))

    @property
    def flavours(self) -> tuple[int, ...]:
        """PDG ids of the partons the set holds (21 for the gluon)."""
        return tuple(21 if f == 0 else int(f) for f in self.info.get("Flavors", []))

    @property
    def particle(self) -> int:
        """PDG id of the hadron (2212 for a proton set)."""
        return int(self.info.get("Particle", 2212))

    @property
    def lhaglue_id(self) -> int:
        """``SetIndex`` of the set (member 0); member ``k`` is ``lhaglue_id + k``."""
        return int(self.info.get("SetIndex", 0))

    def member(self, k: int = 0, interpolation: str = "logcubic") -> LHAGrid:
        """Member ``k`` (0: the central member), read once."""
        if not isinstance(k, int) or not 0 <= k < self.num_members:
            raise PDFSetError(f"PDF set {self.name!r} has members 0..{self.num_members - 1}, "
                              f"asked for {k!r}")
        if k not in self._members:
            path = self.path / f"{self.name}_{k:04d}.dat"
            if not path.is_file():
                raise PDFSetError(f"PDF set {self.name!r}: member file {str(path)!r} is missing")
            self._members[k] = LHAGrid.read(path, interpolation)
        return self._members[k]

    @property
    def alpha_s(self) -> Any:
        """The set's ``alpha_s(Q^2)`` (callable on numpy arrays)."""
        if self._alpha_s is None:
            self._alpha_s = self._make_alpha_s()
        return self._alpha_s

    def _make_alpha_s(self) -> Any:
        i = self.info
        qs, vals = i.get("AlphaS_Qs"), i.get("AlphaS_Vals")
        if i.get("AlphaS_Type", "ipol") == "ipol" and qs is not None and vals is not None:
            try:
                return AlphaSGrid(qs, vals)
            except ValueError as exc:
                raise PDFSetError(f"PDF set {self.name!r}: {exc}") from None
        if i.get("AlphaS_MZ") is None:
            raise PDFSetError(f"PDF set {self.name!r} gives neither an alpha_s grid nor "
                              "AlphaS_MZ")
        order = int(i.get("AlphaS_OrderQCD", i.get("OrderQCD", 1)))
        masses = (float(i.get("MCharm", 1.51)), float(i.get("MBottom", 4.92)),
                  float(i.get("MTop", 172.5)))
        return AlphaSRunning(float(i["AlphaS_MZ"]), float(i.get("MZ", 91.1876)),
                             loops=min(order + 1, 3), masses=masses,
                             nf_max=int(i.get("NumFlavors", 5)))

    def __repr__(self) -> str:
        return f"PDFSet({self.name!r}, members={self.num_members}, id={self.lhaglue_id})"
