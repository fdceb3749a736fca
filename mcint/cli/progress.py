"""Progress display: a tqdm bar on a terminal, plain lines otherwise (tqdm is optional)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """One phase's progress (``total`` units), with live key/value fields.

    ``mode``: ``"bar"`` (tqdm), ``"plain"`` (a line every few seconds), ``"none"``, or
    ``"auto"`` (a bar when stderr is a terminal and tqdm is installed, else plain).
    """

    def __init__(self, label: str, total: int, mode: str = "auto", unit: str = "it",
                 stream: TextIO | None = None, every: float = 5.0) -> None:
        self.label, self.total, self.unit = label, max(int(total), 1), unit
        self.stream = stream or sys.stderr
        self.n = 0
        self.fields: dict[str, str] = {}
        self._bar: Any = None
        self._every = every
        self._last = time.monotonic()
        self._t0 = self._last
        if mode == "auto":
            mode = "bar" if _isatty(self.stream) and _has_tqdm() else "plain"
        if mode == "bar" and not _has_tqdm():
            mode = "plain"
        self.mode = mode
        if mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=label, unit=unit, file=self.stream,
                             dynamic_ncols=True, leave=True)

    def update(self, n: int = 0, *, to: int | None = None, **fields: Any) -> None:
        """Advance by ``n`` (or to ``to``) and set the live fields."""
        new = self.n + n if to is None else int(to)
        step, self.n = new - self.n, new
        for k, v in fields.items():
            self.fields[k] = _fmt(v)
        if self._bar is not None:
            if step:
                self._bar.update(step)
            self._bar.set_postfix_str(self._postfix(), refresh=False)
        elif self.mode == "plain":
            now = time.monotonic()
            if now - self._last >= self._every:
                self._last = now
                self._line()

    def _postfix(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.fields.items())

    def _line(self, final: bool = False) -> None:
        pct = 100.0 * min(self.n, self.total) / self.total
        el = time.monotonic() - self._t0
        tail = f" ({el:.1f} s)" if final else ""
        print(f"{self.label}: {pct:5.1f}% {self.n}/{self.total} {self.unit} {self._postfix()}"
              f"{tail}".rstrip(), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(), refresh=True)
            self._bar.close()
            self._bar = None
        elif self.mode == "plain":
            self._line(final=True)
        self.mode = "closed"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.mode != "closed":
            self.close()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:
        return False


def _has_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True
