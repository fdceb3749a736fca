"""``mcint run`` survives interruption: checkpoints in OUT/checkpoint.npz, ``--resume OUT``
continues in a fresh process and ends with the numbers of an uninterrupted run (same seed,
CPU backend); Ctrl-C/SIGTERM exit with one line; bad resume requests fail in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from mcint import serialize  # noqa: E402
from mcint.backends import default_name  # noqa: E402
from mcint.cli import main  # noqa: E402
from mcint.events import read_npz  # noqa: E402

# no backend: the run resolves it ($MCINT_BACKEND, else numba or numpy) and records the result
CARD = """
integrand = "camel"
sampler = "nis"
seed = 3
train_calls = 4000
integrate_calls = 4000
calibration_calls = 20000
events = 300
plot = false
progress = "none"

[sampler_options]
batch_size = 256
flow = {hidden = [16], layers = 2, bins = 6}
"""
ENV = {**{k: v for k, v in os.environ.items() if k != "MCINT_BACKEND"},
       "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def _cmd(*args):
    exe = shutil.which("mcint")
    return [*([exe] if exe else [sys.executable, "-m", "mcint.cli"]), *map(str, args)]


def _run(cwd, *args, timeout=120, **env):
    p = subprocess.run(_cmd(*args), cwd=cwd, capture_output=True, text=True,
                       env={**ENV, **env}, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p


def _start_and_signal(cwd, out, sig):
    """Start a run checkpointing every 2 steps; send ``sig`` once the first checkpoint is on
    disk. Returns (returncode, stderr)."""
    proc = subprocess.Popen(_cmd("run", "card.toml", "--out", out, "--checkpoint-every", 2),
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV)
    ck = Path(cwd) / out / "checkpoint.npz"
    try:
        t0 = time.monotonic()
        while not ck.exists() and proc.poll() is None and time.monotonic() - t0 < 90:
            time.sleep(0.005)
        assert proc.poll() is None, f"the run ended before it was interrupted: {proc.stderr.read()}"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def _pending(ck):
    meta, _ = serialize.load(ck, expect_kind="nis-checkpoint")
    return meta["state"]["pending_train"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """An uninterrupted run ("full") and one killed with SIGKILL after its first checkpoint."""
    d = tmp_path_factory.mktemp("resume")
    (d / "card.toml").write_text(CARD)
    _run(d, "run", "card.toml", "--out", "full", "--no-checkpoint")
    rc, _ = _start_and_signal(d, "killed", signal.SIGKILL)
    assert rc == -signal.SIGKILL
    return d


def test_sigkill_then_resume_equals_uninterrupted_run(work, tmp_path):
    run_dir = tmp_path / "killed"
    shutil.copytree(work / "killed", run_dir)
    rep = json.loads((run_dir / "run.json").read_text())
    assert rep["status"] == "training"
    assert rep["options"]["backend"] is None and rep["backend"] == default_name()
    pending = _pending(run_dir / "checkpoint.npz")
    assert 0 < pending["done"] < pending["n_fresh"]    # the kill landed mid-training
    # what a SIGKILL during a checkpoint write leaves (mcint.serialize's temporary name)
    stale = run_dir / ".checkpoint.npz.k3j2h1g0.tmp"
    stale.write_bytes(b"half a checkpoint")
    # a fresh process, from another working directory, where $MCINT_BACKEND names another
    # backend: the run continues on the one it recorded
    p = _run(tmp_path, "run", "--resume", "killed", MCINT_BACKEND="torch")
    assert f"resumed at step {pending['done']}" in p.stdout and f"backend {default_name()}" in p.stdout
    assert f"resuming on the run's backend {default_name()} ($MCINT_BACKEND=torch is ignored" in p.stderr
    assert not stale.exists()
    full = json.loads((work / "full" / "run.json").read_text())
    got = json.loads((run_dir / "run.json").read_text())
    assert got["status"] == "done" and got["resumed"] == 1 and got["backend"] == default_name()
    assert got["result"] == full["result"]             # bit for bit, not approximately
    assert got["history"] == full["history"]
    assert got["unweighting"]["w_max"] == full["unweighting"]["w_max"]
    a, b = read_npz(work / "full" / "events.npz"), read_npz(run_dir / "events.npz")
    assert len(a) == len(b) == 300 and (a.x == b.x).all()
    assert not (run_dir / "checkpoint.npz").exists()   # a finished run keeps model.npz only
    assert (run_dir / "model.npz").is_file()


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_signal_saves_checkpoint_and_exits_with_one_line(tmp_path, sig, code, word):
    (tmp_path / "card.toml").write_text(CARD)
    rc, err = _start_and_signal(tmp_path, "o", sig)
    assert rc == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    ck = tmp_path / "o" / "checkpoint.npz"
    assert lines == [f"mcint: {word}: checkpoint saved to {Path('o') / 'checkpoint.npz'}; "
                     "continue with `mcint run --resume o`"], err
    pending = _pending(ck)
    assert 0 < pending["done"] < pending["n_fresh"]
    from mcint.examples import get
    from mcint.nis import Integrator

    it = Integrator.resume(str(ck), get("camel").integrand(4))    # loads and validates
    assert it.step >= pending["done"]
    assert it.run_tag == {"integrand": "camel", "dims": 4, "seed": 3}


def _one_line_error(capsys, argv, match):
    rc = main(list(map(str, argv)))
    _, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1, err
    assert lines[0].startswith("mcint: error: ") and match in lines[0], lines[0]


def _edit_run(d, **options):
    rj = d / "run.json"
    rep = json.loads(rj.read_text())
    rep["options"].update(options)
    rj.write_text(json.dumps(rep))


def test_resume_errors_are_one_line(work, tmp_path, capsys):
    def copy(name):
        shutil.copytree(work / "killed", tmp_path / name)
        return tmp_path / name

    _one_line_error(capsys, ["run", "--resume", tmp_path / "nope"], "is not a directory")
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, ["run", "--resume", tmp_path / "empty"], "no run.json in")
    d = copy("nock")
    (d / "checkpoint.npz").unlink()
    _one_line_error(capsys, ["run", "--resume", d], "no checkpoint 'checkpoint.npz' in")
    d = copy("corrupt")
    raw = (d / "checkpoint.npz").read_bytes()
    (d / "checkpoint.npz").write_bytes(raw[: len(raw) // 2])
    _one_line_error(capsys, ["run", "--resume", d], "corrupt or truncated")
    d = copy("other")
    _edit_run(d, integrand="gauss", dims=4)
    _one_line_error(capsys, ["run", "--resume", d], "belongs to another run (integrand 'camel'")
    d = copy("dims")
    _edit_run(d, dims=3)
    _one_line_error(capsys, ["run", "--resume", d], "is a checkpoint in 4 dims, the run's "
                    "integrand camel has 3")
    d = copy("seed")
    _edit_run(d, seed=4)
    _one_line_error(capsys, ["run", "--resume", d], "seed 3; run.json has integrand 'camel', "
                    "seed 4")
    _one_line_error(capsys, ["run", "--resume", d, "--seed", "5"], "--seed cannot change")
    d = copy("backend")
    _one_line_error(capsys, ["run", "--resume", d, "--backend", "torch"],
                    f"cannot resume on backend 'torch': the run trained on '{default_name()}'")
    _one_line_error(capsys, ["run", "--resume", d, "--force"], "--resume continues one")
    d = copy("code")
    _edit_run(d, integrand=f"{tmp_path / 'helper.py'}:f")
    _one_line_error(capsys, ["run", "--resume", d], "which imports and runs that Python code; "
                    "a run file found in a directory is not trusted: give --trust-run-file")
    d = copy("vegas")
    rj = d / "run.json"
    rj.write_text(rj.read_text().replace('"sampler": "nis"', '"sampler": "vegas"'))
    _one_line_error(capsys, ["run", "--resume", d], "uses VEGAS, which keeps no checkpoint")
    _one_line_error(capsys, ["run", "camel", "--resume", d], "either a TARGET or --resume")
    _one_line_error(capsys, ["run", "--resume", work / "full"], "has finished")
    _one_line_error(capsys, ["run"], "needs a TARGET")


def test_interrupted_file_target_says_how_to_resume_it(tmp_path):
    from mcint.cli.resume import interrupted_message

    ck = tmp_path / "checkpoint.npz"
    ck.write_bytes(b"x")
    msg = str(interrupted_message(KeyboardInterrupt(), ck, tmp_path, False, trust=True))
    assert msg.endswith(f"continue with `mcint run --resume {tmp_path} --trust-run-file`")
    msg = str(interrupted_message(KeyboardInterrupt(), None, tmp_path, False, kind="vegas"))
    assert msg == ("interrupted during VEGAS training, which keeps no checkpoint: nothing to "
                   "resume (start it again with --force)")
