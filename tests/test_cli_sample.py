"""``mcint sample`` / ``mcint info``: events from a saved model, also where torch is absent."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mcint.cli import main
from mcint.events import read_npz

pytest.importorskip("mcint.nis")

# runs in a fresh interpreter with torch blocked, so it tests the no-torch path even here
_NO_TORCH = textwrap.dedent("""
    import json, sys
    sys.modules["torch"] = None          # any `import torch` now fails
    from mcint import examples, available
    from mcint.nis import Integrator
    d = sys.argv[1]
    ex = examples.get("camel")
    # an untrained model is a valid sampler: enough to test loading and sampling
    Integrator(ex.integrand(), ex.dims, seed=0).save(d + "/model.npz")
    json.dump({"integrand": "camel", "dims": 4, "files": {"model": "model.npz"}},
              open(d + "/run.json", "w"))
    from mcint.cli import main
    backend = "numba" if "numba" in available() else "numpy"
    rc = main(["sample", d, "--backend", backend, "--events", "300", "--out", d + "/ev.npz",
               "--calibration-calls", "20000", "--progress", "none", "--seed", "5"])
    assert sys.modules["torch"] is None
    sys.exit(rc)
""")


def test_sample_works_without_torch(tmp_path):
    p = subprocess.run([sys.executable, "-c", _NO_TORCH, str(tmp_path)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    ev = read_npz(tmp_path / "ev.npz")
    assert len(ev) == 300 and ev.complete and ev.x.shape == (300, 4)
    assert np.all((ev.x >= 0) & (ev.x <= 1))
    assert "integral" in p.stdout


def test_sample_from_a_vegas_run(tmp_path, capsys):
    pytest.importorskip("mcint.vegas")
    from mcint.vegas import VEGAS

    if not hasattr(VEGAS, "save"):
        pytest.skip("VEGAS has no save() in this build")
    out = tmp_path / "v"
    rc = main(["run", "gauss", "--sampler", "vegas", "--events", "100", "--out", str(out),
               "--train-calls", "4000", "--integrate-calls", "4000", "--calibration-calls",
               "20000", "--progress", "none", "--no-plot"])
    assert rc == 0, capsys.readouterr().err
    rc = main(["sample", str(out), "--events", "150", "--out", str(tmp_path / "s.npz"),
               "--calibration-calls", "20000", "--progress", "none"])
    assert rc == 0, capsys.readouterr().err
    ev = read_npz(tmp_path / "s.npz")
    assert len(ev) == 150 and ev.complete
    # events concentrate around the peak at the centre (sigma 0.05)
    assert np.all(np.abs(ev.x.mean(axis=0) - 0.5) < 0.05)


def _trained_run(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    rc = main(["run", "camel", "--sampler", "nis", "--events", "100", "--out", str(out),
               "--train-calls", "4000", "--integrate-calls", "4000", "--calibration-calls",
               "20000", "--progress", "none", "--no-plot"])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    return out


def test_sample_from_a_trained_run_is_reproducible(tmp_path, capsys):
    run_dir = _trained_run(tmp_path, capsys)
    assert (run_dir / "model.npz").is_file()
    outs = []
    for name in ("a.npz", "b.npz"):
        rc = main(["sample", str(run_dir / "model.npz"), "--events", "200", "--seed", "9",
                   "--out", str(tmp_path / name), "--calibration-calls", "20000",
                   "--progress", "none"])
        assert rc == 0, capsys.readouterr().err
        outs.append(read_npz(tmp_path / name))
    np.testing.assert_array_equal(outs[0].x, outs[1].x)
    rep = json.loads((run_dir / "run.json").read_text())
    # events carry the run's cross section
    np.testing.assert_allclose(outs[0].weight, rep["result"]["value"], rtol=0.2)
    out = capsys.readouterr().out
    assert "unweighting" in out
    rc = main(["info", str(run_dir / "model.npz")])
    out = capsys.readouterr().out
    assert rc == 0 and "nis-checkpoint" in out and "camel" in out


def test_sample_needs_an_integrand_without_run_file(tmp_path, capsys):
    pytest.importorskip("torch")
    run_dir = _trained_run(tmp_path, capsys)
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "m.npz").write_bytes((run_dir / "model.npz").read_bytes())
    rc = main(["sample", str(lone / "m.npz"), "--events", "10", "--out", str(lone / "e.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "--integrand" in err and err.count("\n") == 1
    rc = main(["sample", str(lone / "m.npz"), "--integrand", "camel", "--events", "50",
               "--out", str(lone / "e.npz"), "--progress", "none", "--calibration-calls",
               "20000"])
    assert rc == 0, capsys.readouterr().err
    assert len(read_npz(lone / "e.npz")) == 50


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04garbage"])
def test_corrupt_model_is_one_line(tmp_path, capsys, content):
    (tmp_path / "model.npz").write_bytes(content)
    (tmp_path / "run.json").write_text(json.dumps({"integrand": "camel", "dims": 4,
                                                   "files": {"model": "model.npz"}}))
    for argv in (["sample", str(tmp_path), "--events", "5", "--out", str(tmp_path / "e.npz")],
                 ["info", str(tmp_path / "model.npz")]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc != 0 and err.count("\n") == 1 and "Traceback" not in err, err
        assert "model.npz" in err
    assert not (tmp_path / "e.npz").exists()


def _vegas_model_dir(d, integrand, **extra):
    from mcint.vegas import VEGAS

    d.mkdir(parents=True, exist_ok=True)
    VEGAS(lambda x: np.exp(-np.sum((x - 0.5) ** 2, axis=1) / 0.1), 2,
          seed=0).save(str(d / "model.npz"))
    (d / "run.json").write_text(json.dumps({"integrand": integrand, "dims": 2,
                                            "files": {"model": "model.npz"}, **extra}))
    return d


QUICK = ["--events", "20", "--calibration-calls", "2000", "--progress", "none"]


def test_sample_does_not_replace_events_without_force(tmp_path, capsys):
    d = _vegas_model_dir(tmp_path / "run", "gauss")
    out = tmp_path / "s.npz"
    argv = ["sample", str(d), "--integrand", "gauss", "--out", str(out), *QUICK]
    assert main(argv) == 0, capsys.readouterr().err
    first = out.read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give --force" in err and "s.npz" in err, err
    assert out.read_bytes() == first
    assert main([*argv, "--seed", "8", "--force"]) == 0
    assert out.read_bytes() != first


def test_module_target_in_a_run_file_needs_trust(tmp_path, capsys, monkeypatch):
    """module:function imports a module from the run's recorded working directory: code from
    the directory, like a file.py target."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "mcint_sample_mod.py").write_text(
        "import numpy as np\nimported = True\n"
        "def f(x):\n    return np.exp(-np.sum((x - 0.5) ** 2, axis=1) / 0.1)\n")
    d = _vegas_model_dir(tmp_path / "run", "mcint_sample_mod:f", cwd=str(src))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert main(["sample", str(d), "--out", str(tmp_path / "a.npz"), *QUICK]) == 2
    err = capsys.readouterr().err
    assert "names the integrand 'mcint_sample_mod:f'" in err and "--trust-run-file" in err
    assert "mcint_sample_mod" not in sys.modules
    assert main(["sample", str(d), "--out", str(tmp_path / "b.npz"), "--trust-run-file",
                 *QUICK]) == 0, capsys.readouterr().err
    assert sys.modules.pop("mcint_sample_mod").imported
    assert len(read_npz(tmp_path / "b.npz")) == 20


def test_lhe_gz_out_run_sample_and_plot(tmp_path, capsys):
    """``--out NAME.lhe.gz``: the run writes gzip LHE beside NAME.run.json; ``mcint sample`` finds
    that run from its directory and writes ``.lhe.gz`` too; pylhe reads both."""
    pylhe = pytest.importorskip("pylhe")
    pytest.importorskip("torch")          # drell-yan is multi-channel: the NIS sampler
    out = tmp_path / "r" / "dy.lhe.gz"
    rc = main(["run", "drell-yan", "--events", "200", "--out", str(out),
               "--train-calls", "4000", "--integrate-calls", "4000", "--calibration-calls",
               "20000", "--progress", "none", "--no-plot"])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "r" / "dy.run.json").is_file()
    assert out.read_bytes()[:2] == b"\x1f\x8b"                 # gzip
    assert sum(1 for _ in pylhe.LHEFile.fromfile(str(out)).events) == 200
    again = tmp_path / "s" / "x.lhe.gz"
    rc = main(["sample", str(tmp_path / "r"), "--events", "120", "--out", str(again),
               "--calibration-calls", "20000", "--progress", "none"])
    assert rc == 0, capsys.readouterr().err
    assert sum(1 for _ in pylhe.LHEFile.fromfile(str(again)).events) == 120
