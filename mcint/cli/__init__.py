"""The ``mcint`` command.

    mcint run TARGET [options]       train, integrate, write unweighted events, summary, plots
    mcint run --resume DIR           continue an interrupted run from DIR/checkpoint.npz
    mcint sample MODEL --events N --out FILE [--backend numba]   events from a saved model
    mcint info MODEL|RUN_DIR         what a model file / run holds
    mcint plot RUN_DIR|EVENTS        (re)draw the plots; observables of .lhe/.lheh5/.npz
    mcint examples                   the built-in examples

``TARGET`` is a built-in example (``mcint examples``), ``module:function``,
``path/to/file.py:function`` or a TOML run card (``run.toml``; see
:mod:`mcint.cli.config`). Bad input prints one line on stderr and exits non-zero with the
status of :data:`EXIT_CODES`; set ``MCINT_DEBUG=1`` for tracebacks. A NIS run interrupted
during training keeps its checkpoint and says how to resume.

Code named by a file found on disk (the integrand in a run directory's run.json) runs only
with ``--trust-run-file``; a target on the command line or in a run card given there is the
user's choice, and model files never execute code.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from .config import (
    NONFINITE,
    ConfigError,
    RunConfig,
    apply,
    card_keys_text,
    did_you_mean,
    load_config,
)
from .config import option_help as _h
from .resume import Interrupted, Terminated, exit_code

__all__ = ["main", "build_parser", "CLIError", "EXIT_CODES"]

#: every exit status of ``mcint`` (docs/bad-input.md shows the same table; a test checks it)
EXIT_CODES = {
    0: "success (also --help, --version)",
    1: "the run failed: the integrand raised, a file could not be written (disk full), ...",
    2: "usage or configuration error: unknown flag, target, run-card key or backend; a bad "
       "option value; an output path that cannot be used; a foreign or damaged model, run or "
       "event file given to read; an earlier run's outputs without --force; code named by a "
       "run file without --trust-run-file",
    75: "busy: another mcint process holds the output directory's lock (try again later)",
    130: "interrupted by Ctrl-C (SIGINT)",
    143: "terminated by SIGTERM",
}


class CLIError(Exception):
    """A user-facing error: printed as one line."""

    def __init__(self, msg: str, code: int = 2) -> None:
        super().__init__(msg)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message}{self._suggest(message)} (see `{self.prog} --help`)")

    def _suggest(self, message: str) -> str:
        """A "did you mean" for the first unrecognized ``--flag``."""
        head, sep, args = message.partition("unrecognized arguments: ")
        flags = [a.split("=")[0] for a in args.split() if a.startswith("--")] if sep else []
        if not flags:
            return ""
        # the root parser sees the flags of every subcommand: one of another is no typo
        others = [o for o in _option_strings(self) if o != flags[0]]
        return did_you_mean(flags[0], others)


def _option_strings(p: argparse.ArgumentParser) -> list[str]:
    """Every long option of ``p`` and of its subcommands."""
    out = []
    for action in p._actions:
        out += [o for o in action.option_strings if o.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _option_strings(sub)
    return sorted(set(out))


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", help=_h("backend"))
    p.add_argument("--seed", type=int, help=_h("seed"))
    p.add_argument("--events", type=int, help=_h("events"))
    p.add_argument("--out", help=_h("out"))
    p.add_argument("--format", choices=("lhe", "lheh5", "npz"), help=_h("format"))
    p.add_argument("--budget", type=float, help=_h("budget"))
    p.add_argument("--calibration-calls", type=int, help=_h("calibration_calls"))
    p.add_argument("--batch-size", type=int, help=_h("batch_size"))
    p.add_argument("--flush-every", type=float, help=_h("flush_every"))
    p.add_argument("--progress", choices=("auto", "bar", "plain", "none"), help=_h("progress"))
    p.add_argument("--force", action="store_true", default=None,
                   help="replace an earlier run's outputs (all of them are removed first)")
    p.add_argument("--trust-run-file", action="store_true", default=None,
                   help="run the Python integrand that a run directory's run.json names "
                        "(needed for file.py:function and module:function targets)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mcint`` command."""
    from .. import __version__

    p = _Parser(prog="mcint", description="Monte Carlo integration and event generation "
                "with VEGAS and neural importance sampling.")
    p.add_argument("--version", action="version", version=f"mcint {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="train, integrate and write events",
                       description="Train a sampler on TARGET, integrate, write unweighted "
                       "events, a summary and plots.", epilog=_run_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("target", nargs="?", help="built-in example, module:function, "
                   "file.py:function, or a .toml run card")
    r.add_argument("--resume", metavar="DIR",
                   help="continue the interrupted NIS run whose --out was DIR, with its "
                        "recorded options and backend (VEGAS runs keep no checkpoint)")
    r.add_argument("--checkpoint-every", type=int, metavar="N", help=_h("checkpoint_every"))
    r.add_argument("--no-checkpoint", dest="checkpoint", action="store_const", const=False,
                   default=None, help="write no training checkpoints")
    r.add_argument("--sampler", choices=("nis", "vegas"), help=_h("sampler"))
    r.add_argument("--dims", type=int, help=_h("dims"))
    r.add_argument("--train-calls", type=int, help=_h("train_calls"))
    r.add_argument("--integrate-calls", type=int, help=_h("integrate_calls"))
    r.add_argument("--plot", dest="plot", action="store_const", const=True, default=None,
                   help=_h("plot"))
    r.add_argument("--no-plot", dest="plot", action="store_const", const=False,
                   help="write no plots")
    r.add_argument("--no-save-model", dest="save_model", action="store_const", const=False,
                   default=None, help="do not write model.npz")
    r.add_argument("--nonfinite", choices=NONFINITE, help=_h("nonfinite"))
    _add_common(r)

    s = sub.add_parser("sample", help="write events from a saved model (no torch needed)",
                       description="Draw unweighted events from a model saved by `mcint run` "
                       "(MODEL: the model file or the run directory).")
    s.add_argument("model")
    s.add_argument("--integrand", help="the integrand (example, module:function or "
                   "file.py:function) instead of the one the run recorded")
    _add_common(s)

    i = sub.add_parser("info", help="describe a model file or run directory")
    i.add_argument("model")

    pl = sub.add_parser("plot", help="draw the plots of a run directory or an event file",
                        description="Draw the plots of a run directory, or physics observables "
                        "(masses, pT, rapidities, Delta R, angles) of an LHE/LHEH5 event file "
                        "(marginals of an npz file); a built-in example's exact distributions "
                        "are overlaid when the file sits in its run directory.")
    pl.add_argument("source", help="run directory, run.json, or EVENTS.lhe|.lheh5|.npz")
    pl.add_argument("--out", help="directory for the PNG files (default: plots/ next to SOURCE)")

    sub.add_parser("examples", help="list the built-in examples")
    return p


def _run_epilog() -> str:
    """The run-card keys and the exit statuses, below the flags of ``mcint run --help``."""
    codes = "; ".join(f"{k} {v.split(':')[0].split(' (')[0]}" for k, v in EXIT_CODES.items())
    return card_keys_text() + "\n\n" + "\n".join(textwrap.wrap(
        f"exit status: {codes} (docs/bad-input.md)", width=98))


#: flags that steer the command, not the run (never stored in run.json)
_NOT_OPTIONS = ("command", "target", "resume", "force", "trust_run_file")


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line."""
    return {k: v for k, v in vars(args).items() if v is not None and k not in _NOT_OPTIONS}


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    target = args.target
    if target is None:
        raise CLIError("mcint run needs a TARGET (an example, module:function or a .toml run "
                       "card), or --resume DIR (see `mcint run --help`)")
    if target.endswith(".toml"):
        cfg = load_config(target)
    else:
        cfg = RunConfig(integrand=target)
    apply(cfg, _given(args), source="command line")
    if cfg.backend is None and os.environ.get("MCINT_BACKEND"):
        cfg.backend = os.environ["MCINT_BACKEND"]
    return cfg.validate()


def _check_backend(name: str | None) -> None:
    """Resolve the backend now, so a typo fails before any work."""
    from ..backends import BackendUnavailable, get_backend

    try:
        get_backend(name)
    except (ValueError, BackendUnavailable) as exc:
        raise CLIError(str(exc)) from None


def _note_ignored_backend(recorded: str | None) -> None:
    """Say so when $MCINT_BACKEND would have chosen another backend than the resumed run's."""
    env = os.environ.get("MCINT_BACKEND")
    if env and recorded and env.strip().lower() != recorded:
        print(f"mcint: note: resuming on the run's backend {recorded} ($MCINT_BACKEND={env} "
              "is ignored: a resumed run continues where it started)", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from .run import run
    from .summary import format_summary

    if args.resume is not None:
        from .resume import load_resume

        if args.target is not None:
            raise CLIError(f"give either a TARGET or --resume DIR, not both (got "
                           f"{args.target!r} and --resume {args.resume!r})")
        if args.force:
            raise CLIError("--force replaces an earlier run; --resume continues one: give "
                           "one of them")
        cfg, state = load_resume(args.resume, _given(args), bool(args.trust_run_file))
        _check_backend(cfg.backend)
        _note_ignored_backend(cfg.backend)
        rep = run(cfg, resume=state)
    else:
        cfg = _config_from_args(args)
        _check_backend(cfg.backend)
        rep = run(cfg, force=bool(args.force))
    from dataclasses import asdict

    print(format_summary(asdict(rep)))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .sample import sample

    return sample(args)


def cmd_info(args: argparse.Namespace) -> int:
    from .sample import info

    return info(args)


def cmd_plot(args: argparse.Namespace) -> int:
    from .sample import plot

    return plot(args)


def cmd_examples(args: argparse.Namespace) -> int:
    from .. import examples

    rows = []
    for name in examples.names():
        ex = examples.get(name)
        exact = ex.exact()
        rows.append((name, str(ex.dims) + ("+" if ex.scalable else ""),
                     "" if exact is None else f"{exact:.6g}", ex.event_format, ex.description))
    w = [max(len(r[i]) for r in rows + [("name", "dims", "exact", "events", "")])
         for i in range(4)]
    print(f"{'name':<{w[0]}}  {'dims':<{w[1]}}  {'exact':<{w[2]}}  {'events':<{w[3]}}  "
          "description")
    for r in rows:
        print(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]:<{w[3]}}  {r[4]}")
    return 0


COMMANDS = {"run": cmd_run, "sample": cmd_sample, "info": cmd_info, "plot": cmd_plot,
            "examples": cmd_examples}


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().replace("\n", " ")
    if isinstance(exc, (CLIError, ConfigError)):
        return msg
    known = (ValueError, OSError, ImportError, RuntimeError, KeyError, TypeError)
    name = type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        msg = str(exc.args[0])
    return msg if isinstance(exc, known) and msg else f"{name}: {msg}"


_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _disk_full(exc: BaseException) -> OSError | None:
    """The out-of-space error behind ``exc`` (itself, or what it was raised from), if any."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and (e.errno in _DISK_FULL or
                                       "No space left on device" in str(e)):
            return e
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return None


def _disk_full_line(e: OSError) -> str:
    where = f" writing {e.filename!r}" if e.filename else ""
    return f"no space left on device{where}: free some space or write elsewhere (--out)"


def _bad_file(exc: BaseException) -> bool:
    """A model or event file that cannot be used (foreign, damaged, refused at load): the
    input's fault, reported as one line naming the file, as a bad option is -- wherever the
    command met it (``mcint plot`` reads event files, ``mcint sample`` models, ...)."""
    from ..events import EventFileError
    from ..serialize import ModelFileError

    return isinstance(exc, (EventFileError, ModelFileError))


def exit_status(exc: BaseException) -> int:
    """The exit status for an exception that ends the command (see :data:`EXIT_CODES`)."""
    if _disk_full(exc) is not None:   # a runtime failure, whatever was writing
        return 1
    if isinstance(exc, CLIError):
        return exc.code
    if isinstance(exc, ConfigError) or _bad_file(exc):
        return 2
    if isinstance(exc, Interrupted):
        return exc.code
    if isinstance(exc, KeyboardInterrupt):
        return exit_code(exc)
    return int(getattr(exc, "exit_status", 1))


def _error_line(exc: BaseException) -> str:
    """The one line printed for an error (the traceback hint only for unexpected ones)."""
    full = _disk_full(exc)
    if full is not None:
        return f"mcint: error: {_disk_full_line(full)}"
    line = f"mcint: error: {_one_line(exc)}"
    expected = (isinstance(exc, (CLIError, ConfigError)) or hasattr(exc, "exit_status")
                or _bad_file(exc))
    return line if expected else f"{line} (MCINT_DEBUG=1 shows the traceback)"


def _sigterm(signum: int, frame: Any) -> None:
    # a KeyboardInterrupt, so event writers publish what they have and clean up
    raise Terminated


def _stop_listening() -> None:
    """Ignore further SIGINT/SIGTERM: the first one is being reported, and a second one
    during the interpreter's shutdown would print an "Exception ignored in atexit" traceback
    (or kill the process with -2 instead of the 130 it is about to return)."""
    for s in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(s, signal.SIG_IGN)
        except (ValueError, OSError):  # not in the main thread
            pass


def _interrupted_line(exc: BaseException) -> str:
    if isinstance(exc, Interrupted):
        return f"mcint: {exc}"
    how = "terminated" if isinstance(exc, Terminated) else "interrupted"
    return f"mcint: {how} (event files hold the events written so far, marked incomplete)"


def _dispatch(argv: Sequence[str] | None) -> int:
    """Parse and run the command; errors propagate to :func:`main`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        old = signal.signal(signal.SIGTERM, _sigterm)
    except ValueError:  # not in the main thread
        old = None
    stopping = False
    try:
        return COMMANDS[args.command](args)
    except (KeyboardInterrupt, Interrupted):
        stopping = True
        _stop_listening()   # before SIGTERM would go back to its default (killing at once)
        raise
    finally:
        if old is not None and not stopping:
            signal.signal(signal.SIGTERM, old)


def _kept_handlers(argv: Sequence[str] | None) -> contextlib.AbstractContextManager[Any]:
    """Where Python code calls ``main(argv)``, its signal handlers are its own again after;
    ``main()`` is the process's command, whose shutdown follows, quiet (see _stop_listening)."""
    if argv is None or threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = contextlib.ExitStack()
    for s, h in saved.items():
        if h is not None:
            stack.callback(signal.signal, s, h)
    return stack


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mcint`` console script; returns the exit status."""
    with _kept_handlers(argv):
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    debug = bool(os.environ.get("MCINT_DEBUG"))
    try:
        return _dispatch(argv)
    except (KeyboardInterrupt, Interrupted) as exc:
        _stop_listening()     # first: a second signal must not interrupt the report
        print(_interrupted_line(exc), file=sys.stderr)
        return exit_status(exc)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except Exception as exc:
        if debug:
            raise
        print(_error_line(exc), file=sys.stderr)
        return exit_status(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
