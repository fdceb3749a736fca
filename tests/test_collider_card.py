"""`mcint run card.toml` for a collider process: UMAMI library, LHAPDF-style set, scales, cuts and
channels from the card; the written LHE read back with pylhe."""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import pytest
from test_pdf import _write_set

from mcint.cli import main
from mcint.pdf import LHAGrid
from mcint.processes import DrellYan

pylhe = pytest.importorskip("pylhe")

CHANNELS = {
    "photon": '{decay = [0, 1], nu = 1.0}',
    "Z": '{decay = [0, 1], mass = 91.1876, width = 2.4952}',
}


def _card(tmp_path, umami_lib, channels, sampler):
    d = _write_set(tmp_path / "pdfs")
    (d / "ToySynth.info").write_text(
        "SetDesc: synthetic\nFormat: lhagrid1\nNumMembers: 1\nSetIndex: 90400\n"
        "Flavors: [-2, -1, 1, 2, 21]\nAlphaS_MZ: 0.118\nAlphaS_OrderQCD: 1\nMZ: 91.1876\n")
    (tmp_path / "param_card.dat").write_text("# test card\nMZ 91.1876\nWZ 2.4952\n")
    lib = umami_lib()
    chans = "".join(f'[[process.channel]]\nname = "{n}"\ndiagram = {i}\n'
                    f"topology = {CHANNELS[n]}\n" for i, n in enumerate(channels))
    text = textwrap.dedent(f"""\
        [run]
        seed = 3
        sampler = "{sampler}"
        train_calls = 20000
        integrate_calls = 40000
        events = 2000
        out = "out"
        progress = "none"
        plot = false

        [beam]
        e_cm = 13000.0
        pdf = "pdfs/ToySynth"
        scale = "partonic_energy"

        [process]
        outgoing = [11, -11]
        param_card = "param_card.dat"
        [[process.subprocess]]
        library = "{lib}"
        flavours = [[2, -2, 1], [1, -1, 2]]

        [cuts]
        sqrt_s_min = 60.0
        sqrt_s_max = 2000.0
        """) + chans
    card = tmp_path / "dy.toml"
    card.write_text(text)
    return card, LHAGrid.read(d / "ToySynth_0000.dat")


def _check_run(tmp_path, pdf):
    rep = json.loads((tmp_path / "out" / "run.json").read_text())
    f = pylhe.LHEFile.fromfile(tmp_path / "out" / "events.lhe")
    events = list(f.events)
    assert len(events) == 2000
    text = (tmp_path / "out" / "events.lhe").read_text()
    assert "<mcintRunCard>" in text and "<slha>" in text and "MZ 91.1876" in text
    assert f.init.initInfo.PDFsetA == 90400 and f.init.initInfo.beamA == 2212
    assert len(re.findall(r"^#pdf ", text, re.M)) == 2000
    for e in events[:200]:
        p = np.array([[q.e, q.px, q.py, q.pz] for q in e.particles])
        np.testing.assert_allclose(p[0] + p[1], p[2] + p[3], atol=1e-7 * p[:, 0].sum())
        assert {abs(q.id) for q in e.particles[:2]} <= {1, 2}
        m = np.sqrt(max((p[2] + p[3])[0] ** 2 - np.sum((p[2] + p[3])[1:] ** 2), 0))
        assert 60 - 1e-6 < m < 2000 + 1e-6
    # the cross section of the same process built in (same PDF, same mass window, no Z')
    exact = DrellYan(m_min=60, m_max=2000, zprime_mass=0.0, pdf=pdf).exact()
    res = rep["result"]
    assert abs(res["value"] - exact) < 5 * res["error"], (res, exact)
    return rep


def test_single_channel_card_with_vegas(tmp_path, umami_lib):
    card, pdf = _card(tmp_path, umami_lib, ["Z"], "vegas")
    assert main(["run", str(card)]) == 0
    rep = _check_run(tmp_path, pdf)
    assert rep["sampler"] == "vegas"


def test_two_channel_card_with_nis(tmp_path, umami_lib):
    pytest.importorskip("torch")
    card, pdf = _card(tmp_path, umami_lib, ["photon", "Z"], "nis")
    assert main(["run", str(card)]) == 0
    rep = _check_run(tmp_path, pdf)
    assert [c["channel"] for c in rep["channels"]] == ["photon", "Z"]


def test_card_errors_name_the_key(tmp_path, umami_lib, capsys):
    card, _ = _card(tmp_path, umami_lib, ["Z"], "vegas")
    text = card.read_text()
    cases = [("e_cm = 13000.0", "e_cm = -1", "[beam].e_cm must be a positive number"),
             ('scale = "partonic_energy"', 'scale = "partonic_energi"',
              "did you mean 'partonic_energy'"),
             ("sqrt_s_min = 60.0", "sqrt_s_mn = 60.0", "did you mean 'sqrt_s_min'"),
             ('pdf = "pdfs/ToySynth"', 'pdf = "NoSuchSet"', "'NoSuchSet' not found"),
             ("[[process.channel]]", "[[process.chanel]]", "did you mean 'channel'")]
    for bad, new, msg in cases:
        card.write_text(text.replace(bad, new))
        assert main(["run", str(card)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err and "dy.toml" in err, err


def test_batched_evaluation_equals_channel_by_channel(tmp_path, umami_lib):
    """``HadronicProcess.evaluate_batch``: one library call per subprocess for rows of several
    channels, row by row the same as ``evaluate`` (values, priors from DIAGRAM_AMP2, features)."""
    from mcint.collider.card import load_card

    card, _ = _card(tmp_path, umami_lib, ["photon", "Z"], "nis")
    proc, _ = load_card(card)
    rng = np.random.default_rng(5)
    r, ch = rng.random((400, proc.dims)), rng.integers(0, proc.n_channels, 400)
    whole = proc.evaluate_batch(r, ch)
    for c in range(proc.n_channels):
        one = proc.evaluate(r[ch == c], c)
        np.testing.assert_array_equal(whole.value[ch == c], one.value)
        np.testing.assert_array_equal(whole.alpha_prior[ch == c], one.alpha_prior)
        np.testing.assert_array_equal(whole.features[ch == c], one.features)
    with pytest.raises(ValueError, match="channel must be in"):
        proc.evaluate_batch(r[:2], np.array([0, 7]))
