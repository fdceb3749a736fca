"""The ``mcint`` command: runs end to end, honours options and run cards, fails in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mcint.backends import default_name
from mcint.cli import main
from mcint.events import read_npz

FAST = ["--train-calls", "4000", "--integrate-calls", "4000", "--calibration-calls", "20000",
        "--progress", "none", "--no-plot"]


def run_ok(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out, err


def one_line_error(capsys, argv, code=None, match=None):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc != 0
    if code is not None:
        assert rc == code
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("mcint: error: ")
    assert "Traceback" not in err
    if match is not None:
        assert match in lines[0], lines[0]
    return lines[0]


def test_examples_listing(capsys):
    out, _ = run_ok(capsys, "examples")
    for name in ("camel", "gauss", "ring", "drell-yan", "w2j"):
        assert name in out
    assert "0.998285" in out   # camel's exact value in 4 dims


def test_run_vegas_writes_events_summary_and_run_file(tmp_path, capsys):
    out_dir = tmp_path / "out"
    out, _ = run_ok(capsys, "run", "camel", "--sampler", "vegas", "--events", "500",
                    "--seed", "3", "--out", str(out_dir), *FAST)
    assert "integral" in out and "unweighting" in out and "cut efficiency" in out
    rep = json.loads((out_dir / "run.json").read_text())
    ev = read_npz(out_dir / "events.npz")
    assert len(ev) == 500 == rep["events"]["n"] and ev.complete
    assert ev.x.shape == (500, 4)
    # unweighted: every event carries the same weight, the cross section
    np.testing.assert_allclose(ev.weight, rep["unweighting"]["sigma_abs"])
    res = rep["result"]
    assert abs(res["value"] - rep["exact"]) < 5 * res["error"]
    assert rep["unweighting"]["overweight_fraction"] < 5e-3
    assert set(rep["timing"]) >= {"train", "integrate", "calibrate", "events", "total"}
    assert rep["sampler"] == "vegas" and rep["backend"] == default_name()   # numba when installed


def test_same_seed_same_events(tmp_path, capsys):
    for d in ("a", "b"):
        run_ok(capsys, "run", "gauss", "--sampler", "vegas", "--events", "200", "--seed", "5",
               "--out", str(tmp_path / d), *FAST)
    a, b = (read_npz(tmp_path / d / "events.npz") for d in ("a", "b"))
    np.testing.assert_array_equal(a.x, b.x)


def test_toml_run_card_and_command_line_override(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myint.py").write_text(textwrap.dedent("""
        import numpy as np
        def f(x):
            return 3.0 * x[:, 0] ** 2 * np.ones(len(x))   # integral 1 over [0, 1]^d
    """))
    (tmp_path / "run.toml").write_text(textwrap.dedent("""
        integrand = "myint.py:f"
        dims = 2
        sampler = "vegas"
        seed = 4
        train-calls = 4000
        integrate_calls = 4000
        calibration_calls = 20000
        events = 300
        out = "card-out"
        plot = false
        progress = "none"
    """))
    run_ok(capsys, "run", "run.toml", "--events", "250")
    rep = json.loads((tmp_path / "card-out" / "run.json").read_text())
    assert rep["events"]["n"] == 250 and rep["dims"] == 2 and rep["seed"] == 4
    assert abs(rep["result"]["value"] - 1.0) < 5 * rep["result"]["error"]


def test_module_function_target_and_event_file_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mcint_test_integrand.py").write_text(
        "def g(x):\n    return x.sum(axis=1)\n")   # integral d/2
    target = tmp_path / "res" / "ev.npz"
    run_ok(capsys, "run", "mcint_test_integrand:g", "--dims", "3", "--sampler", "vegas",
           "--events", "100", "--out", str(target), *FAST)
    assert len(read_npz(target)) == 100
    rep = json.loads((tmp_path / "res" / "ev.run.json").read_text())
    assert abs(rep["result"]["value"] - 1.5) < 5 * rep["result"]["error"]


def test_mcint_backend_environment_variable(tmp_path, capsys, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("MCINT_BACKEND", "numba")
    run_ok(capsys, "run", "gauss", "--sampler", "vegas", "--events", "50",
           "--out", str(tmp_path / "o"), *FAST)
    assert json.loads((tmp_path / "o" / "run.json").read_text())["backend"] == "numba"
    monkeypatch.setenv("MCINT_BACKEND", "no-such-backend")
    one_line_error(capsys, ["run", "gauss", "--out", str(tmp_path / "p"), *FAST],
                   match="no-such-backend")


def _write_bad_files(tmp_path):
    (tmp_path / "bad.toml").write_text('integrand = "camel"\nevnts = 10\n')
    (tmp_path / "broken.toml").write_text('integrand = "camel\n')
    (tmp_path / "typed.toml").write_text('integrand = "camel"\nevents = "many"\n')
    (tmp_path / "modnoattr.py").write_text("x = 1\n")
    (tmp_path / "file-not-dir").write_text("")


def _bad_inputs(tmp_path, write=True):
    if write:
        _write_bad_files(tmp_path)
    ro = tmp_path / "file-not-dir"
    return {
        "unknown example": (["run", "camell"], "unknown example 'camell'"),
        "missing module": (["run", "no_such_module_xyz:f", "--dims", "2"],
                           "cannot import module 'no_such_module_xyz'"),
        "missing attribute": (["run", f"{tmp_path / 'modnoattr.py'}:f", "--dims", "2"],
                              "has no attribute 'f'"),
        "missing dims": (["run", f"{tmp_path / 'modnoattr.py'}:x"], "not a function"),
        "bad config key": (["run", str(tmp_path / "bad.toml")], "unknown key 'evnts'"),
        "bad toml": (["run", str(tmp_path / "broken.toml")], "not valid TOML"),
        "bad toml type": (["run", str(tmp_path / "typed.toml")], "events must be of type int"),
        "missing card": (["run", str(tmp_path / "nope.toml")], "does not exist"),
        "unwritable output": (["run", "camel", "--out", str(ro / "sub")],
                              "cannot create output directory"),
        "events 0": (["run", "camel", "--events", "0"],
                     "number of events must be an integer >= 1; got 0"),
        "negative calls": (["run", "camel", "--train-calls", "-5"], "train_calls must be"),
        "unknown backend": (["run", "camel", "--backend", "nmupy"], "unknown backend 'nmupy'"),
        "not installed backend": (["run", "camel", "--backend", "cupy"],
                                  "backend 'cupy' is not usable here"),
        "unknown flag": (["run", "camel", "--evnts", "5"], "unrecognized arguments"),
        "bad sampler": (["run", "camel", "--sampler", "mcmc"], "invalid choice"),
        "fixed dims": (["run", "ring", "--dims", "3"], "fixed dimension 2"),
        "lhe for toy": (["run", "camel", "--format", "lhe", "--out", str(tmp_path / "l")],
                        "no particle content"),
        "budget": (["run", "camel", "--budget", "1.5"], "budget"),
        "format clash": (["run", "camel", "--format", "lhe", "--out", str(tmp_path / "e.npz")],
                         "contradicts the output name"),
        "sample missing model": (["sample", str(tmp_path / "nothing.npz"), "--events", "5"],
                                 "does not exist"),
        "plot missing": (["plot", str(tmp_path / "nothing")], "does not exist"),
    }


@pytest.mark.parametrize("case", list(_bad_inputs(Path("."), write=False)))
def test_bad_input_gets_one_clear_line(tmp_path, capsys, monkeypatch, case):
    monkeypatch.delenv("MCINT_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    argv, match = _bad_inputs(tmp_path)[case]
    if case == "not installed backend":
        import mcint

        if "cupy" in mcint.available():
            pytest.skip("cupy is usable here")
    if case == "plot missing":
        pytest.importorskip("matplotlib")
    one_line_error(capsys, argv, code=2, match=match)   # all usage/configuration errors
    assert not (tmp_path / "mcint-out" / "run.json").exists()


def test_unwritable_directory_fails_before_training(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    t = time.perf_counter()
    one_line_error(capsys, ["run", "camel", "--out", str(ro / "ev.npz"), *FAST],
                   match="not writable")
    assert time.perf_counter() - t < 5


def test_plot_request_without_matplotlib_is_one_line(tmp_path, capsys, monkeypatch):
    import mcint.plots

    monkeypatch.setattr(mcint.plots, "have_matplotlib", lambda: False)
    one_line_error(capsys, ["run", "camel", "--plot", "--out", str(tmp_path)],
                   match="pip install 'mcint[plot]'")


def _mcint_cmd():
    exe = shutil.which("mcint")
    return [exe] if exe else [sys.executable, "-m", "mcint.cli"]


def test_console_script_bad_input_has_no_traceback(tmp_path):
    p = subprocess.run([*_mcint_cmd(), "run", "no-such-example", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert "unknown example 'no-such-example'" in p.stderr


def test_plots_and_plot_command(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "o"
    argv = ["run", "camel", "--sampler", "vegas", "--events", "300", "--out", str(out_dir),
            *[a for a in FAST if a != "--no-plot"]]
    run_ok(capsys, *argv)
    pngs = sorted(p.name for p in (out_dir / "plots").glob("*.png"))
    assert pngs == ["marginals.png", "training.png", "weights.png"]
    for p in (out_dir / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out, _ = run_ok(capsys, "plot", str(out_dir / "events.npz"), "--out", str(tmp_path / "pp"))
    assert (tmp_path / "pp" / "events.marginals.png").is_file()
    out, _ = run_ok(capsys, "info", str(out_dir))
    assert "camel" in out and "integral" in out


_SLOW_INTEGRAND = textwrap.dedent("""
    import time
    import numpy as np
    def f(x):
        time.sleep(0.002)          # keep the event phase busy long enough to interrupt it
        return np.exp(-np.sum((x - 0.5) ** 2, axis=1) / 0.02)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_run_leaves_a_valid_event_file(tmp_path, sig):
    (tmp_path / "slowint.py").write_text(_SLOW_INTEGRAND)
    ev = tmp_path / "o" / "events.npz"
    cmd = [*_mcint_cmd(), "run", "slowint.py:f", "--dims", "2", "--sampler", "vegas",
           "--events", "1000000", "--out", str(ev), "--flush-every", "0.001",
           "--batch-size", "2000", *FAST]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        t0 = time.monotonic()
        while not ev.exists() and time.monotonic() - t0 < 60 and proc.poll() is None:
            time.sleep(0.05)
        assert ev.exists(), proc.communicate()[1] if proc.poll() is not None else "no file"
        time.sleep(0.2)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    got = read_npz(ev)            # never corrupt: a complete file with the events so far
    assert 0 < len(got) < 1_000_000 and not got.complete
    if sig == signal.SIGTERM:
        assert proc.returncode == 143   # 128 + SIGTERM, as a shell reports it
        assert "terminated" in err and "Traceback" not in err


@pytest.mark.parametrize("fmt", ["lhe", "lheh5"])
def test_physics_run_writes_lhe_that_pylhe_reads(tmp_path, capsys, fmt):
    pylhe = pytest.importorskip("pylhe")
    pytest.importorskip("mcint.processes")
    if fmt == "lheh5":
        pytest.importorskip("h5py")
    out_dir = tmp_path / "ee"
    run_ok(capsys, "run", "ee-mumu", "--sampler", "vegas", "--events", "300", "--format", fmt,
           "--out", str(out_dir), *FAST)
    rep = json.loads((out_dir / "run.json").read_text())
    f = pylhe.LHEFile.fromfile(out_dir / f"events.{fmt}")
    events = list(f.events)
    assert len(events) == 300
    assert f.init.procInfo[0].xSection == pytest.approx(rep["result"]["value"], rel=1e-9)
    assert f.init.procInfo[0].error == pytest.approx(rep["result"]["error"], rel=1e-9)
    assert abs(rep["result"]["value"] - rep["exact"]) < 5 * rep["result"]["error"]
    assert {p.id for p in events[0].particles} == {11, -11, 13, -13}
    assert all(e.eventinfo.weight == pytest.approx(rep["unweighting"]["sigma_abs"])
               for e in events)


def test_multichannel_nis_run(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("mcint.processes")
    out_dir = tmp_path / "dy"
    out, _ = run_ok(capsys, "run", "drell-yan", "--events", "200", "--out", str(out_dir),
                    "--train-calls", "3000", "--integrate-calls", "6000",
                    "--calibration-calls", "20000", "--progress", "none", "--no-plot")
    rep = json.loads((out_dir / "run.json").read_text())
    assert rep["sampler"] == "nis" and len(rep["channels"]) == 3
    assert "channels (integration points):" in out and "Zprime" in out
    assert abs(rep["result"]["value"] - rep["exact"]) < 5 * rep["result"]["error"]
    assert rep["history"] and all("loss" in h for h in rep["history"])
    one_line_error(capsys, ["run", "drell-yan", "--sampler", "vegas"], match="multi-channel")


def test_signed_integrand_gives_signed_events(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # integral over [0,1]^2 of cos(3 pi x / 2) + 0.2 = -2/(3 pi) + 0.2 ~ -0.0122: mostly cancels
    (tmp_path / "signed.py").write_text(
        "import numpy as np\n"
        "def f(x):\n    return np.cos(1.5 * np.pi * x[:, 0]) + 0.2\n")
    out_dir = tmp_path / "o"
    run_ok(capsys, "run", "signed.py:f", "--dims", "2", "--sampler", "vegas", "--events",
           "4000", "--out", str(out_dir), *FAST)
    rep = json.loads((out_dir / "run.json").read_text())
    ev = read_npz(out_dir / "events.npz")
    sig_abs = rep["unweighting"]["sigma_abs"]
    assert set(np.unique(np.sign(ev.weight))) == {-1.0, 1.0}
    np.testing.assert_allclose(np.abs(ev.weight), sig_abs)
    exact = -2 / (3 * np.pi) + 0.2
    # the mean event weight estimates the integral (binomial error of the sign balance)
    err = sig_abs / np.sqrt(len(ev))
    assert abs(ev.weight.mean() - exact) < 4 * err
    # the negative share matches the integrand: int |f| over negative region / int |f|
    assert 0.3 < rep["unweighting"]["negative_fraction"] < 0.7


def test_second_run_on_the_same_directory_fails_at_once(tmp_path):
    """Two `mcint run --out same` at once: the second stops at once naming the lock and the
    first run's pid; the first is not disturbed."""
    (tmp_path / "slowint.py").write_text(_SLOW_INTEGRAND)
    out = tmp_path / "o"
    first = subprocess.Popen([*_mcint_cmd(), "run", "slowint.py:f", "--dims", "2", "--sampler",
                              "vegas", "--events", "1000000", "--out", str(out),
                              "--batch-size", "2000", *FAST], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not (out / "run.json").exists() and time.monotonic() - t0 < 60:
            assert first.poll() is None, first.communicate()[1]
            time.sleep(0.05)
        t = time.perf_counter()
        second = subprocess.run([*_mcint_cmd(), "run", "camel", "--sampler", "vegas", "--out",
                                 str(out), "--force", *FAST], capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 75, second.stderr
        assert second.stderr.strip() == (
            f"mcint: error: another mcint process (pid {first.pid}) is writing to {str(out)!r} "
            f"(lock {str(out / '.mcint.lock')!r}): wait for it to finish, or choose another "
            "--out")
        assert time.perf_counter() - t < 30      # no training first: it fails at once
        assert json.loads((out / "run.json").read_text())["integrand"] == "slowint.py:f"
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143
    assert not (out / ".mcint.lock").exists()


def test_force_replaces_every_file_of_the_earlier_run(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "o"
    argv = ["run", "camel", "--sampler", "vegas", "--events", "50", "--out", str(out),
            *[a for a in FAST if a != "--no-plot"]]
    run_ok(capsys, *argv)
    (out / "plots" / "notes.txt").write_text("mine")         # not a run's file: kept
    one_line_error(capsys, argv, code=2, match="holds the outputs of an earlier run")
    run_ok(capsys, *argv, "--no-plot", "--force")
    assert sorted(p.name for p in out.iterdir()) == ["diagnostics.npz", "events.npz",
                                                      "model.npz", "plots", "run.json"]
    assert [p.name for p in (out / "plots").iterdir()] == ["notes.txt"]


def test_interrupted_run_is_refused_as_earlier_outputs_with_a_resume_hint(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"integrand": "camel", "status": "training"}))
    line = one_line_error(capsys, ["run", "camel", "--out", str(out), *FAST], code=2)
    assert f"`mcint run --resume {out}` continues it" in line


def test_main_called_from_python_keeps_the_callers_signal_handlers(monkeypatch, capsys):
    """The console script ignores a second Ctrl-C while it shuts down; Python code calling
    main(argv) gets its own handlers back."""
    import mcint.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "examples", interrupted)
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert cli.main(["examples"]) == 130
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert capsys.readouterr().err.startswith("mcint: interrupted")
