"""The ``mcint`` command.

    mcint run TARGET [options]       train, integrate, write unweighted events, summary, plots
    mcint run --resume DIR           continue an interrupted run from DIR/checkpoint.npz
    mcint sample MODEL --events N --out FILE [--backend numba]   events from a saved model
    mcint info MODEL|RUN_DIR         what a model file / run holds
    mcint plot RUN_DIR|EVENTS        (re)draw the plots; observables of .lhe/.lheh5/.npz
    mcint examples                   the built-in examples

``TARGET`` is a built-in example (``mcint examples``), ``module:function``,
``path/to/file.py:function`` or a TOML run card (``run.toml``; see
:mod:`mcint.cli.config`). Bad input prints one line on stderr and exits non-zero (2 for bad
options, 1 when the run fails, 130 on Ctrl-C/SIGINT, 143 on SIGTERM); set ``MCINT_DEBUG=1`` for
tracebacks. A NIS run interrupted during training keeps its checkpoint and says how to resume.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .config import ConfigError, RunConfig, apply, load_config
from .resume import Interrupted, Terminated, exit_code

__all__ = ["main", "build_parser", "CLIError"]


class CLIError(Exception):
    """A user-facing error: printed as one line."""

    def __init__(self, msg: str, code: int = 2) -> None:
        super().__init__(msg)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see `{self.prog} --help`)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", help="array backend: numpy, numba, torch, strict, cupy, "
                   "torch-cuda (default: $MCINT_BACKEND or numpy)")
    p.add_argument("--seed", type=int, help="random seed (same seed + backend = same numbers)")
    p.add_argument("--events", type=int, help="number of unweighted events to write")
    p.add_argument("--out", help="output directory, or an event file name (.lhe, .lheh5, .npz)")
    p.add_argument("--format", choices=("lhe", "lheh5", "npz"), help="event file format")
    p.add_argument("--budget", type=float,
                   help="share of the cross section allowed in truncated overweights "
                        "(default 0.001, as MadGraph)")
    p.add_argument("--calibration-calls", type=int,
                   help="points drawn to choose the maximum weight")
    p.add_argument("--batch-size", type=int, help="points per sampling batch")
    p.add_argument("--flush-every", type=float,
                   help="seconds between valid partial event files (default 60)")
    p.add_argument("--progress", choices=("auto", "bar", "plain", "none"),
                   help="progress display (default: a bar on a terminal)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mcint`` command."""
    from .. import __version__

    p = _Parser(prog="mcint", description="Monte Carlo integration and event generation "
                "with VEGAS and neural importance sampling.")
    p.add_argument("--version", action="version", version=f"mcint {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="train, integrate and write events",
                       description="Train a sampler on TARGET, integrate, write unweighted "
                       "events, a summary and plots.")
    r.add_argument("target", nargs="?", help="built-in example, module:function, "
                   "file.py:function, or a .toml run card")
    r.add_argument("--resume", metavar="DIR",
                   help="continue the interrupted run whose --out was DIR (same options)")
    r.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="training steps between checkpoints in OUT/checkpoint.npz (default 50; "
                        "also written on Ctrl-C/SIGTERM)")
    r.add_argument("--no-checkpoint", dest="checkpoint", action="store_const", const=False,
                   default=None, help="write no training checkpoints")
    r.add_argument("--sampler", choices=("nis", "vegas"),
                   help="neural importance sampling (default where torch is installed) or "
                        "VEGAS+")
    r.add_argument("--dims", type=int, help="dimensions (module:function, scalable examples)")
    r.add_argument("--train-calls", type=int, help="integrand calls for training")
    r.add_argument("--integrate-calls", type=int, help="integrand calls for the final estimate")
    r.add_argument("--plot", dest="plot", action="store_const", const=True, default=None,
                   help="write plots (default: when matplotlib is installed)")
    r.add_argument("--no-plot", dest="plot", action="store_const", const=False)
    r.add_argument("--no-save-model", dest="save_model", action="store_const", const=False,
                   default=None, help="do not write model.npz")
    _add_common(r)

    s = sub.add_parser("sample", help="write events from a saved model (no torch needed)",
                       description="Draw unweighted events from a model saved by `mcint run` "
                       "(MODEL: the model file or the run directory).")
    s.add_argument("model")
    s.add_argument("--integrand", help="override the integrand recorded with the model")
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


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    target = args.target
    if target is None:
        raise CLIError("mcint run needs a TARGET (an example, module:function or a .toml run "
                       "card), or --resume DIR (see `mcint run --help`)")
    if target.endswith(".toml"):
        cfg = load_config(target)
    else:
        cfg = RunConfig(integrand=target)
    given = {k: v for k, v in vars(args).items()
             if v is not None and k not in ("command", "target", "resume")}
    apply(cfg, given, source="command line")
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


def cmd_run(args: argparse.Namespace) -> int:
    from .run import run
    from .summary import format_summary

    if args.resume is not None:
        from .resume import load_resume

        if args.target is not None:
            raise CLIError(f"give either a TARGET or --resume DIR, not both (got "
                           f"{args.target!r} and --resume {args.resume!r})")
        given = {k: v for k, v in vars(args).items()
                 if v is not None and k not in ("command", "target", "resume")}
        cfg, state = load_resume(args.resume, given)
        _check_backend(cfg.backend)
        rep = run(cfg, resume=state)
    else:
        cfg = _config_from_args(args)
        _check_backend(cfg.backend)
        rep = run(cfg)
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


def _sigterm(signum: int, frame: Any) -> None:
    # a KeyboardInterrupt, so event writers publish what they have and clean up
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mcint`` console script; returns the exit status."""
    debug = bool(os.environ.get("MCINT_DEBUG"))
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        try:
            old = signal.signal(signal.SIGTERM, _sigterm)
        except ValueError:  # not in the main thread
            old = None
        try:
            return COMMANDS[args.command](args)
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)
    except Interrupted as exc:
        print(f"mcint: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt as exc:
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"mcint: {how} (event files hold the events written so far, marked "
              "incomplete)", file=sys.stderr)
        return exit_code(exc)
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except (CLIError, ConfigError) as exc:
        if debug:
            raise
        print(f"mcint: error: {_one_line(exc)}", file=sys.stderr)
        return getattr(exc, "code", 2)
    except Exception as exc:
        if debug:
            raise
        print(f"mcint: error: {_one_line(exc)} (MCINT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
