"""Check and build the docs (what ``nox -s docs`` runs); needs nothing beyond mcint itself.

1. Runs every ```python block of every ``docs/*.md`` page, in order, one namespace per page,
   inside a temporary working directory. A block whose first line is ``# doc: skip`` is not
   run; ``# doc: needs torch`` (or another module) skips it where that module is missing.
2. Runs the doctests of the modules documented in the API reference.
3. Writes ``docs/api.md`` from the docstrings of the public API (``--check``: fail instead if
   the file is out of date).

    python docs/build.py            # run snippets and doctests, regenerate api.md
    python docs/build.py --check    # ... and fail if api.md changed
"""

from __future__ import annotations

import argparse
import contextlib
import doctest
import importlib
import importlib.util
import inspect
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

#: (module, [public names]) in the order of the API reference
API = [
    ("mcint", ["VEGAS", "Integrator", "Integrand", "Batch", "get_backend", "available", "use"]),
    ("mcint.nis", ["SamplerOptions", "TrainingOptions", "ChannelOptions"]),
    ("mcint.results", ["Result", "IterationResult", "format_value"]),
    ("mcint.diagnostics", ["relative_std", "effective_sample_size", "largest_weight_share",
                           "unweighting_efficiency", "channel_table", "summary"]),
    ("mcint.channels", ["MultiChannelIntegrand", "ChannelEval"]),
    ("mcint.flows", ["Flow"]),
    ("mcint.flows.splines", ["rq_spline", "check_spline_args"]),
    ("mcint.backends", ["fusable", "select_kernel", "trace"]),
    ("mcint.transforms", ["Transform", "Compose", "Affine"]),
    ("mcint.events", ["max_weight", "unweight", "unweighted_events", "iid_source", "Unweighter",
                      "UnweightStats", "ParticleEvents", "RunInfo", "open_writer", "LHEWriter",
                      "LHEH5Writer", "NpzWriter", "write_npz", "read_npz", "read_events",
                      "ReadEvents"]),
    ("mcint.observables", ["invariant_mass", "pt", "rapidity", "pseudorapidity", "delta_r",
                           "standard_observables"]),
    ("mcint.examples", ["Example", "get", "names"]),
    ("mcint.umami", ["load", "MatrixElement", "UmamiError", "UmamiNonFiniteError", "Status"]),
    ("mcint.collider", ["HadronicProcess", "Subprocess", "Flavour", "mirrored", "ParticleCuts",
                        "scale", "ColliderEvents", "Resonance", "EventRecord",
                        "check_color_flow", "read_topologies"]),
    ("mcint.pdf", ["PDFSet", "LHAGrid", "AlphaSRunning", "AlphaSGrid", "ToyPDF"]),
    ("mcint.phasespace", ["PhaseSpace", "ThreeBodyDecay", "TwoToThree", "two_to_three",
                          "two_to_three_inverse", "Chili"]),
    ("mcint.amplitudes", ["Process", "EWParameters", "Diagram", "Line", "HadronCollision",
                          "colour_flows"]),
    ("mcint.serialize", ["save", "load"]),
    ("mcint.plots", ["plot_training", "plot_weights", "plot_marginals", "plot_channels",
                     "plot_events", "plot_run"]),
    ("mcint.cli", ["main"]),
]

FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def code_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every python block."""
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in FENCE.finditer(text)]


def _skip_reason(code: str) -> str | None:
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    if first.startswith("# doc: skip"):
        return "marked skip"
    m = re.match(r"# doc: needs (\w+)", first)
    if m and importlib.util.find_spec(m.group(1)) is None:
        return f"needs {m.group(1)}"
    return None


@contextlib.contextmanager
def _chdir(path: str):
    # contextlib.chdir is Python >= 3.11 only
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_pages(pages: list[Path]) -> int:
    failures = 0
    for page in pages:
        blocks = code_blocks(page.read_text())
        if not blocks:
            continue
        ns: dict = {"__name__": f"docs_{page.stem}"}
        with tempfile.TemporaryDirectory() as tmp, _chdir(tmp):
            for line, code in blocks:
                why = _skip_reason(code)
                if why:
                    print(f"  skip {page.name}:{line} ({why})")
                    continue
                t0 = time.perf_counter()
                try:
                    exec(compile(code, f"{page.name}:{line}", "exec"), ns)
                except Exception:
                    failures += 1
                    print(f"FAIL {page.name}:{line}")
                    traceback.print_exc()
                    break  # later blocks of the page depend on this one
                print(f"  ok   {page.name}:{line} ({time.perf_counter() - t0:.1f} s)")
    return failures


def run_doctests() -> int:
    failures = 0
    seen = set()
    for mod_name, names in API:
        mods = {mod_name}
        mod = importlib.import_module(mod_name)
        for n in names:
            obj = getattr(mod, n, None)
            if obj is not None and getattr(obj, "__module__", None):
                mods.add(obj.__module__)
        for m in sorted(mods - seen):
            seen.add(m)
            res = doctest.testmod(importlib.import_module(m), optionflags=doctest.ELLIPSIS
                                  | doctest.NORMALIZE_WHITESPACE, verbose=False)
            failures += res.failed
            if res.attempted:
                print(f"  doctest {m}: {res.attempted - res.failed}/{res.attempted} ok")
    return failures


def _signature(obj: object) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""
    return sig


def _doc(obj: object) -> str:
    d = inspect.getdoc(obj) or "(no docstring)"
    return d.replace("```", "'''")


def api_markdown() -> str:
    out = ["# API reference", "",
           "Generated from the docstrings by `docs/build.py` (do not edit by hand).", ""]
    for mod_name, names in API:
        mod = importlib.import_module(mod_name)
        out += [f"## `{mod_name}`", ""]
        summary = (inspect.getdoc(mod) or "").split("\n\n")[0]
        if summary:
            out += [summary, ""]
        for n in names:
            obj = getattr(mod, n, None)
            if obj is None:
                out += [f"### `{mod_name}.{n}`", "", "*(not available in this build)*", ""]
                continue
            kind = "class" if inspect.isclass(obj) else "function"
            out += [f"### {kind} `{mod_name}.{n}{_signature(obj)}`", "", "```text", _doc(obj),
                    "```", ""]
            if inspect.isclass(obj):
                for meth_name, meth in inspect.getmembers(obj):
                    if meth_name.startswith("_") or not (inspect.isfunction(meth)
                                                         or isinstance(meth, property)):
                        continue
                    if meth_name not in vars(obj) and not any(
                            meth_name in vars(b) for b in obj.__mro__[1:-1]
                            if b.__module__.startswith("mcint")):
                        continue
                    doc = inspect.getdoc(meth)
                    if not doc:
                        continue
                    sig = "" if isinstance(meth, property) else _signature(meth)
                    out += [f"- `{meth_name}{sig}`: {doc.splitlines()[0]}"]
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if api.md is out of date")
    ap.add_argument("--no-run", action="store_true", help="only build api.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(ROOT))
    failures = 0
    if not args.no_run:
        pages = sorted(p for p in DOCS.glob("*.md") if p.name != "api.md")
        print(f"running the python blocks of {len(pages)} pages")
        failures += run_pages(pages)
        print("running doctests")
        failures += run_doctests()
    api = api_markdown()
    target = DOCS / "api.md"
    old = target.read_text() if target.exists() else ""
    if api != old:
        if args.check:
            print("docs/api.md is out of date: run python docs/build.py")
            failures += 1
        else:
            target.write_text(api)
            print("wrote docs/api.md")
    if failures:
        print(f"{failures} failure(s)")
        return 1
    print("docs ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
