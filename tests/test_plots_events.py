"""Physics observables, reading event files back, and `mcint plot` on event files."""

from __future__ import annotations

import contextlib
import json
import math
import sys

import numpy as np
import pytest

from mcint import observables as O
from mcint.events import (
    EventFileError,
    LHEH5Writer,
    LHEWriter,
    NpzWriter,
    ParticleEvents,
    RunInfo,
    read_events,
)

INFO = RunInfo(xsec=3.5, xerr=0.01, beams=(11, -11), energies=(45.6, 45.6))


def _boost(p: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Lorentz boost of momenta ``(..., 4)`` by velocity ``beta (3,)``."""
    b2 = float(beta @ beta)
    g = 1 / math.sqrt(1 - b2)
    bp = p[..., 1:] @ beta
    e = g * (p[..., 0] + bp)
    vec = p[..., 1:] + ((g - 1) * bp / b2 + g * p[..., 0])[..., None] * beta
    return np.concatenate([e[..., None], vec], axis=-1)


def _two_body(n: int, mass: float, rng: np.random.Generator) -> np.ndarray:
    """``(n, 2, 4)`` massless back-to-back pairs of invariant mass ``mass``, random directions."""
    c, ph = rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(1 - c * c)
    k = mass / 2 * np.stack([np.ones(n), s * np.cos(ph), s * np.sin(ph), c], axis=1)
    return np.stack([k, k * [1, -1, -1, -1]], axis=1)


def ee_sample(n: int, seed: int = 0):
    """``e+ e- -> mu+ mu-`` events with cos(theta) drawn from EEMuMu's exact distribution."""
    from mcint.processes import EEMuMu

    proc = EEMuMu()
    rng = np.random.default_rng(seed)
    f = proc.dsigma_dcos
    fmax = float(max(f(-1.0), f(1.0)))
    c = np.empty(0)
    while c.size < n:
        t = rng.uniform(-1, 1, 4 * n)
        c = np.concatenate([c, t[rng.uniform(0, fmax, t.size) < f(t)]])
    c = c[:n]
    e = proc.sqrt_s / 2
    s, ph = np.sqrt(1 - c * c), rng.uniform(0, 2 * np.pi, n)
    mu = e * np.stack([np.ones(n), s * np.cos(ph), s * np.sin(ph), c], axis=1)
    beams = np.broadcast_to([[e, 0, 0, e], [e, 0, 0, -e]], (n, 2, 4))
    mom = np.concatenate([beams, mu[:, None], (mu * [1, -1, -1, -1])[:, None]], axis=1)
    ev = ParticleEvents(mom, [11, -11, 13, -13], [-1, -1, 1, 1], np.full(n, proc.exact()),
                        channel=rng.integers(0, 3, n))
    return proc, ev


def _write(path, batches, info=INFO):
    cls = LHEH5Writer if str(path).endswith(".lheh5") else LHEWriter
    with cls(path, info, checkpoint_every=None) as w:
        for b in batches:
            w.write(b)
    return path


# -- observables ----------------------------------------------------------------------------
def test_mass_of_a_boosted_two_body_system_is_invariant():
    rng = np.random.default_rng(1)
    pair = _two_body(50, 91.2, rng)
    for beta in ([0.0, 0.0, 0.9], [0.3, -0.5, 0.6], [0.99, 0.0, 0.0]):
        q = _boost(pair, np.array(beta))
        np.testing.assert_allclose(O.invariant_mass(q.sum(axis=1)), 91.2, rtol=1e-9)
        assert np.all(O.invariant_mass(q) < 1e-7 * q[..., 0])   # massless up to rounding
    # a boost along z shifts the pair's rapidity by artanh(beta)
    q = _boost(pair, np.array([0.0, 0.0, 0.6]))
    np.testing.assert_allclose(O.rapidity(q.sum(axis=1)), math.atanh(0.6), atol=1e-12)


def test_pt_eta_rapidity_phi_cos_of_known_vectors():
    p = np.array([[5.0, 3.0, 4.0, 0.0],                              # pT 5, eta 0
                  [math.cosh(2.0), 1.0, 0.0, math.sinh(2.0)],         # massless, eta = y = 2
                  [13.0, 0.0, -5.0, -12.0]])                          # m 0, cos -12/13
    np.testing.assert_allclose(O.pt(p), [5.0, 1.0, 5.0])
    np.testing.assert_allclose(O.pseudorapidity(p), [0.0, 2.0, math.asinh(-12 / 5)], atol=1e-12)
    np.testing.assert_allclose(O.rapidity(p[1:]), [2.0, 0.5 * math.log(1 / 25)], atol=1e-12)
    np.testing.assert_allclose(O.phi(p), [math.atan2(4, 3), 0.0, -math.pi / 2])
    np.testing.assert_allclose(O.cos_theta(p), [0.0, math.tanh(2.0), -12 / 13])
    np.testing.assert_allclose(O.invariant_mass(p[1:]), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="length 4"):
        O.pt(np.zeros((2, 3)))


def test_delta_phi_and_delta_r_wrap_around():
    def at(eta, phi):
        return np.array([math.cosh(eta), math.cos(phi), math.sin(phi), math.sinh(eta)])

    a, b = at(0.5, 3.0), at(-0.5, -3.0)   # 6 rad apart naively, 2 pi - 6 really
    assert O.delta_phi(a, b) == pytest.approx(2 * math.pi - 6.0)
    assert O.delta_r(a, b) == pytest.approx(math.hypot(1.0, 2 * math.pi - 6.0))
    assert O.delta_r(a, b, use_rapidity=True) == pytest.approx(math.hypot(1.0, 2 * math.pi - 6))
    assert O.delta_phi(at(0, 0.1), at(0, math.pi + 0.1)) == pytest.approx(math.pi)
    rng = np.random.default_rng(2)
    ph = rng.uniform(-math.pi, math.pi, (2, 100))
    d = O.delta_phi(np.stack([np.ones(100), np.cos(ph[0]), np.sin(ph[0]), 0 * ph[0]], 1),
                    np.stack([np.ones(100), np.cos(ph[1]), np.sin(ph[1]), 0 * ph[1]], 1))
    assert np.all((d >= 0) & (d <= math.pi))


def test_standard_observables_names_and_values():
    _, ev = ee_sample(20)
    obs = O.standard_observables(ev)
    assert list(obs) == ["m_34", "y_34", "pt_3", "y_3", "eta_3", "pt_4", "y_4", "eta_4",
                         "dR_34", "cos_3"]
    np.testing.assert_allclose(obs["m_34"][0], 91.1876, rtol=1e-12)
    np.testing.assert_allclose(obs["cos_3"][0], ev.momenta[:, 2, 3] / 91.1876 * 2)
    assert obs["m_34"][2] == "GeV" and obs["cos_3"][2] == ""
    assert r"\mu^-" in obs["pt_3"][1]
    # three final-state particles: the whole final state and each pair
    p = np.concatenate([ev.momenta, ev.momenta[:, 3:]], axis=1)
    three = ParticleEvents(p, [11, -11, 13, 22, 22], [-1, -1, 1, 1, 1], np.ones(20))
    names = set(O.standard_observables(three))
    assert {"m_345", "y_345", "m_34", "m_35", "m_45", "dR_45", "pt_5", "cos_3"} <= names
    assert O.standard_observables(type("NoMomenta", (), {"momenta": None})()) == {}


# -- reading event files --------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".lhe", ".lheh5"])
def test_read_events_round_trip_particles(tmp_path, suffix):
    pytest.importorskip("pylhe" if suffix == ".lhe" else "h5py")
    _, a = ee_sample(7, 1)
    _, b = ee_sample(5, 2)
    path = _write(tmp_path / f"ev{suffix}", [a, b])
    r = read_events(path)
    assert len(r) == 12 and r.path == path
    mom = np.concatenate([a.momenta, b.momenta])
    np.testing.assert_allclose(r.momenta, mom, rtol=1e-9, atol=1e-7)
    assert r.momenta.shape == (12, 4, 4) and r.momenta.dtype == np.float64
    np.testing.assert_array_equal(r.pdg, np.broadcast_to([11, -11, 13, -13], (12, 4)))
    np.testing.assert_array_equal(r.status, np.broadcast_to([-1, -1, 1, 1], (12, 4)))
    np.testing.assert_allclose(r.weights, np.concatenate([a.weight, b.weight]), rtol=1e-10)
    np.testing.assert_array_equal(r.channel, np.concatenate([a.channel, b.channel]))
    assert r.xsec == pytest.approx(INFO.xsec) and r.x is None


def test_read_events_round_trip_npz(tmp_path):
    rng = np.random.default_rng(3)
    x, w, c = rng.random((9, 3)), rng.normal(size=9), rng.integers(0, 2, 9)
    with NpzWriter(tmp_path / "p.npz", meta={"xsec": 1.25}, checkpoint_every=None) as wr:
        wr.write_batch(x, w, c)
    r = read_events(tmp_path / "p.npz")
    np.testing.assert_array_equal(r.x, x)
    np.testing.assert_array_equal(r.weights, w)
    np.testing.assert_array_equal(r.channel, c)
    assert r.momenta is None and r.pdg is None and r.xsec == 1.25


@pytest.mark.parametrize("suffix", [".lhe", ".lheh5"])
def test_mixed_multiplicities_are_refused(tmp_path, suffix):
    pytest.importorskip("pylhe" if suffix == ".lhe" else "h5py")
    _, a = ee_sample(3)
    p5 = np.concatenate([a.momenta, a.momenta[:, 3:]], axis=1)
    b = ParticleEvents(p5, [11, -11, 13, -13, 22], [-1, -1, 1, 1, 1], np.ones(3))
    path = _write(tmp_path / f"mixed{suffix}", [a, b])
    with pytest.raises(EventFileError, match="multiplicities") as err:
        read_events(path)
    assert "mixed" in str(err.value)


def _bad_files(tmp_path):
    good = _write(tmp_path / "good.lhe", [ee_sample(20)[1]])
    text = good.read_text()
    (tmp_path / "cut.lhe").write_text(text[: len(text) // 2])
    (tmp_path / "junk.lhe").write_text("these are not events\n")
    (tmp_path / "junk.lheh5").write_bytes(b"\x00not hdf5" * 10)
    (tmp_path / "junk.npz").write_bytes(b"PK junk")
    (tmp_path / "ev.txt").write_text("1 2 3\n")
    return ["missing.lhe", "cut.lhe", "junk.lhe", "junk.lheh5", "junk.npz", "ev.txt"]


def test_bad_or_missing_files_name_the_file(tmp_path):
    pytest.importorskip("pylhe")
    pytest.importorskip("h5py")
    for name in _bad_files(tmp_path):
        with pytest.raises(EventFileError) as err:
            read_events(tmp_path / name)
        assert name in str(err.value), err.value
    with pytest.raises(EventFileError, match="directory"):
        read_events(tmp_path)


def test_missing_pylhe_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "ev.lhe"
    path.write_text("<LesHouchesEvents/>\n")
    monkeypatch.setitem(sys.modules, "pylhe", None)   # import pylhe -> ImportError
    with pytest.raises(EventFileError, match="needs pylhe") as err:
        read_events(path)
    assert "ev.lhe" in str(err.value)


# -- histograms and the exact overlay -------------------------------------------------------
def test_expected_counts_match_the_exact_distribution(tmp_path):
    pytest.importorskip("pylhe")
    pytest.importorskip("hist")
    from mcint.plots import expected_counts, fill_observables

    proc, ev = ee_sample(4000, 5)
    r = read_events(_write(tmp_path / "ee.lhe", [ev]))
    hists = fill_observables(r, reference=proc, n_bins=40)
    # a lepton collider's final state has a fixed mass and rapidity: nothing to plot
    assert "m_34" not in hists and "y_34" not in hists
    oh = hists["cos_3"]
    assert oh.expected is not None and oh.edges[0] == -1 and oh.edges[-1] == 1
    assert oh.expected.sum() == pytest.approx(len(r), rel=0.01)
    assert oh.hist.values().sum() == pytest.approx(len(r))
    chi2 = np.sum((oh.hist.values() - oh.expected) ** 2 / oh.expected)
    assert chi2 / 40 < 2.0, chi2
    # per-bin Gauss-Legendre against the closed form of a(1+c)^2 + b(1-c)^2
    edges = np.linspace(-1, 1, 11)
    prim = (lambda c: 2 * (1 + c) ** 3 / 3 - (1 - c) ** 3 / 3)
    exact = np.diff(prim(edges))
    got = expected_counts(lambda c: 2 * (1 + c) ** 2 + (1 - c) ** 2, edges, 1000.0)
    np.testing.assert_allclose(got, 1000 * exact / exact.sum(), rtol=1e-12)
    assert fill_observables(r, n_bins=40)["cos_3"].expected is None   # no reference


def test_drell_yan_mass_overlay_integrates_to_the_cross_section():
    from mcint.plots import _edges, bin_integrals
    from mcint.processes import DrellYan, EEMuMu

    dy = DrellYan()
    dist = dy.exact_distributions()
    assert set(dist) == {"m_34", "y_34"}
    density, (lo, hi) = dist["m_34"]
    assert (lo, hi) == (dy.m_min, dy.m_max)
    edges, log = _edges(np.zeros(1), 50, (lo, hi), "GeV")
    assert log and edges[0] == lo and edges[-1] == pytest.approx(hi)
    # 16 nodes per log-spaced bin resolve the Z peak: the bins add up to the cross section
    assert bin_integrals(density, edges).sum() == pytest.approx(dy.exact(), rel=0.01)
    c_density, rng = EEMuMu().exact_distributions()["cos_3"]
    assert bin_integrals(c_density, np.linspace(*rng, 51)).sum() == \
        pytest.approx(EEMuMu().exact(), rel=1e-10)


# -- pictures -------------------------------------------------------------------------------
def _png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mcint_plot_on_an_lhe_file_in_a_run_directory(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    pytest.importorskip("hist")
    pytest.importorskip("pylhe")
    import mcint.plots
    from mcint.cli import main

    run = tmp_path / "run"
    run.mkdir()
    _write(run / "events.lhe", [ee_sample(300)[1]])
    (run / "run.json").write_text(json.dumps({"integrand": "ee-mumu",
                                              "files": {"events": "events.lhe"}}))
    seen = {}
    draw = mcint.plots._draw_observable

    def spy(plt, oh, path, title):
        seen[oh.name] = oh.expected is not None
        return draw(plt, oh, path, title)

    monkeypatch.setattr(mcint.plots, "_draw_observable", spy)
    # mplhep's style costs ~25% more drawing time; test_mplhep_style draws with it
    monkeypatch.setattr(mcint.plots, "_style", lambda plt: contextlib.nullcontext())
    assert main(["plot", str(run / "events.lhe"), "--out", str(tmp_path / "pp")]) == 0
    out, err = capsys.readouterr()
    pngs = sorted((tmp_path / "pp").glob("*.png"))
    assert {p.name for p in pngs} == {f"events.{n}.png" for n in
                                      ("pt_3", "y_3", "eta_3", "pt_4", "y_4", "eta_4", "dR_34",
                                       "cos_3")}
    assert all(_png(p) for p in pngs)
    assert all(str(p) in out for p in pngs)
    # the run directory names a built-in example: its exact cos(theta) is overlaid
    assert seen["cos_3"] and not seen["pt_3"]


def test_mplhep_style_draws_an_observable(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("mplhep")
    pytest.importorskip("hist")
    import mcint.plots as P
    from mcint.processes import EEMuMu

    hists = P.fill_observables(ee_sample(200)[1], reference=EEMuMu(), n_bins=20)
    plt = P._plt()
    assert not isinstance(P._style(plt), contextlib.nullcontext)
    path = P._draw_observable(plt, hists["cos_3"], tmp_path / "c.png", "title")
    assert _png(path)


def test_plot_events_on_points_falls_back_to_marginals(tmp_path):
    pytest.importorskip("matplotlib")
    from mcint.events import write_npz
    from mcint.plots import plot_events

    rng = np.random.default_rng(4)
    write_npz(tmp_path / "pts.npz", rng.random((200, 2)), np.ones(200))
    paths = plot_events(tmp_path / "pts.npz", tmp_path / "out")
    assert [p.name for p in paths] == ["pts.marginals.png", "pts.weights.png"]
    assert all(_png(p) for p in paths)


def test_plot_run_adds_event_plots_with_the_example_as_reference(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    pytest.importorskip("hist")
    pytest.importorskip("pylhe")
    import mcint.plots
    from mcint.processes import EEMuMu

    _write(tmp_path / "ev.lhe", [ee_sample(5)[1]])
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"integrand": "ee-mumu", "files": {"events": "ev.lhe"}}))
    calls = []
    monkeypatch.setattr(mcint.plots, "plot_events",
                        lambda path, out, reference=None: calls.append((path, reference)) or [])
    mcint.plots.plot_run(run, tmp_path / "plots")
    assert len(calls) == 1 and calls[0][0] == tmp_path / "ev.lhe"
    assert isinstance(calls[0][1], EEMuMu)
    # npz events of a toy run: no observable plots, no reference
    run.write_text(json.dumps({"integrand": "camel", "files": {"events": "ev.npz"}}))
    mcint.plots.plot_run(run, tmp_path / "plots")
    assert len(calls) == 1
    assert mcint.plots.example_reference("camel") is None
    assert mcint.plots.example_reference("no-such-example") is None


def _capture(monkeypatch):
    import mcint.plots

    figs = []

    def save(fig, path):
        figs.append(fig)
        return path

    monkeypatch.setattr(mcint.plots, "_save", save)
    return figs


def test_plot_channels_shows_small_channels(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from mcint.plots import plot_channels

    figs = _capture(monkeypatch)
    rows = [{"channel": "photon", "share": 0.0211}, {"channel": "Z", "share": 0.977},
            {"channel": "Zprime", "share": 0.0015}]
    plot_channels(rows, tmp_path / "c.png")
    ax = figs[0].axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_ylim()[0] < 0.0015
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["2.11%", "97.7%", "0.15%"]


def test_plot_training_counts_fresh_steps(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from mcint.plots import plot_training

    figs = _capture(monkeypatch)
    history = []
    for k in range(6):   # each fresh step followed by two buffered ones
        history.append({"step": 3 * k + 1, "loss": 1.0 / (k + 1), "integral": 1.0,
                        "error": 0.1, "buffered": False})
        history += [{"step": 3 * k + j, "loss": 0.5, "integral": math.nan, "error": math.nan,
                     "buffered": True} for j in (2, 3)]
    plot_training(history, tmp_path / "t.png")
    for ax in figs[0].axes:
        x = ax.lines[0].get_xdata()
        assert list(x) == [1, 2, 3, 4, 5, 6]
