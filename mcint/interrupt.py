"""Deferring SIGINT/SIGTERM to a safe point, so a long run can checkpoint before it stops.

    with SignalGuard() as guard:
        for step in ...:
            work()
            if guard.caught:
                save_checkpoint()
            guard.raise_if_caught()       # KeyboardInterrupt / SystemExit after the save

While the guard is active the first SIGINT or SIGTERM only sets :attr:`SignalGuard.caught`; a
second one stops at once (an impatient Ctrl-C still works; atomic writes never leave half a
file). The previous handlers are restored on exit. Outside the main thread (where Python cannot
install handlers) the guard does nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["SignalGuard"]


class SignalGuard:
    """Context manager catching ``signals`` (default SIGINT, SIGTERM) until a safe point."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = tuple(signals)
        #: the first signal received while active (``None`` if none)
        self.caught: int | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.caught is not None:
            self._stop(signum)
        self.caught = signum

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.restore()

    def restore(self) -> None:
        """Put the previous handlers back (idempotent)."""
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def raise_if_caught(self) -> None:
        """At a safe point: stop the way the caught signal would have, if one arrived."""
        if self.caught is not None:
            self._stop(self.caught)

    def _stop(self, signum: int) -> None:
        old = self._old.get(signum, signal.SIG_DFL)
        self.restore()
        if callable(old) and old not in (signal.default_int_handler,):
            old(signum, None)  # a handler the program installed before us
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + int(signum))
