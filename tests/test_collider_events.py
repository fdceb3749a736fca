"""Collider event records from a run card: the library's colour flow and helicities, the
channel's resonances as status-2 lines, topologies from JSON, priors without DIAGRAM_AMP2, and
every card section's keys. LHE files are read back with pylhe and checked against physics."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_pdf import _write_set

from mcint.cli import main
from mcint.collider.card import CardError, load_card
from mcint.collider.color import check_color_flow, net_color
from mcint.collider.events import ColliderEvents
from mcint.phasespace import channel_prior

MZ, WZ = 91.1876, 2.4952
FLOWS = "[[[501, 0], [0, 501], [0, 0], [0, 0]]]"
HELS = "[[-1, 1, -1, 1], [1, -1, 1, -1], [-1, 1, 1, -1], [1, -1, -1, 1]]"
PHOTON = "{decay = [0, 1], nu = 1.0, pdg = 22}"
ZED = f"{{decay = [0, 1], mass = {MZ}, width = {WZ}, pdg = 23}}"


def _card(tmp_path, lib, channels=(("Z", ZED),), extra="", sub_extra=None, process_extra=""):
    d = _write_set(tmp_path / "pdfs")
    (d / "ToySynth.info").write_text(
        "SetDesc: synthetic\nFormat: lhagrid1\nNumMembers: 1\nSetIndex: 90400\n"
        "Flavors: [-2, -1, 1, 2, 21]\nAlphaS_MZ: 0.118\nAlphaS_OrderQCD: 1\nMZ: 91.1876\n")
    sub_extra = f"color_flows = {FLOWS}\nhelicities = {HELS}\n" if sub_extra is None else \
        sub_extra
    chans = "".join(f'[[process.channel]]\nname = "{n}"\ndiagram = {i}\ntopology = {t}\n'
                    for i, (n, t) in enumerate(channels))
    text = textwrap.dedent(f"""\
        [run]
        name = "out"
        seed = 5
        output_format = "lhe"
        progress = "none"
        plot = false
        train_calls = 20000
        integrate_calls = 20000

        [generation]
        events = 2000

        [vegas]
        nitn = 5

        [beam]
        e_cm = 13000.0
        pdf = "pdfs/ToySynth"
        scale = "partonic_energy"

        [phasespace]
        bw_cutoff = 5.0

        [cuts]
        sqrt_s_min = 60.0
        sqrt_s_max = 2000.0

        [process]
        outgoing = [11, -11]
        {process_extra}
        [[process.subprocess]]
        library = "{lib}"
        flavours = [[2, -2, 1], [1, -1, 2]]
        """) + sub_extra + extra + chans
    card = tmp_path / "dy.toml"
    card.write_text(text)
    return card


def _boost_z(p, beta):
    g = 1 / np.sqrt(1 - beta * beta)
    return np.array([g * (p[0] - beta * p[3]), p[1], p[2], g * (p[3] - beta * p[0])])


def test_lhe_carries_colour_helicities_and_the_z_resonance(tmp_path, umami_lib):
    """A VEGAS run of the card: every event's colour flow is valid, its helicities are +-1 with
    the massless f fbar / l- l+ pairs opposite, and the helicity chosen by the library follows
    the physics: same-helicity f and l- go forward, <cos theta*> = +1/2 for (1 + cos)^2, and
    -1/2 for opposite helicities. The Z is a status-2 line exactly when m_ll is within
    bw_cutoff = 5 widths, with the leptons' sum as momentum and the leptons pointing to it."""
    pylhe = pytest.importorskip("pylhe")
    card = _card(tmp_path, umami_lib())
    assert main(["run", str(card)]) == 0
    path = tmp_path / "out" / "events.lhe"
    text = path.read_text()
    assert "<mcintRunCard>" in text and "<mcint version=" in text
    events = list(pylhe.LHEFile.fromfile(path).events)
    assert len(events) == 2000
    cos = {True: [], False: []}
    n_z = 0
    for e in events:
        ps = e.particles
        st = [int(q.status) for q in ps]
        pid = [int(q.id) for q in ps]
        assert st.count(-1) == 2 and st.count(1) == 2 and len(ps) in (4, 5)
        p = np.array([[q.e, q.px, q.py, q.pz] for q in ps])
        out = [i for i, s in enumerate(st) if s == 1]
        np.testing.assert_allclose(p[0] + p[1], p[out].sum(axis=0), atol=1e-8 * p[0:2, 0].sum())
        pll = p[out].sum(axis=0)
        mll = np.sqrt(pll[0] ** 2 - pll[1:] @ pll[1:])
        has_z = 23 in pid
        assert has_z == (abs(mll - MZ) <= 5 * WZ), (mll, pid)
        if has_z:
            n_z += 1
            z = pid.index(23)
            assert st[z] == 2 and (ps[z].mother1, ps[z].mother2) == (1, 2)
            np.testing.assert_allclose(p[z], pll, atol=1e-9 * pll[0])
            assert abs(ps[z].m - mll) < 1e-6 * mll
            assert (ps[z].color1, ps[z].color2) == (0, 0)
        for i in out:   # the leptons come from the Z when it is written, else from 1 and 2
            want = (z + 1, z + 1) if has_z else (1, 2)
            assert (ps[i].mother1, ps[i].mother2) == want
            assert (ps[i].color1, ps[i].color2) == (0, 0)
        # colour: the quark carries a colour, the antiquark the same tag as anticolour
        q = 0 if pid[0] > 0 else 1
        qb = 1 - q
        assert pid[q] in (1, 2) and pid[qb] == -pid[q]
        assert ps[q].color1 > 0 and ps[q].color2 == 0
        assert ps[qb].color1 == 0 and ps[qb].color2 == ps[q].color1
        h = {i: float(ps[i].spin) for i in range(len(ps)) if st[i] != 2}
        assert set(h.values()) <= {-1.0, 1.0}
        assert h[0] == -h[1] and h[out[0]] == -h[out[1]]
        lm = out[0] if pid[out[0]] == 11 else out[1]
        beta = (p[0, 3] + p[1, 3]) / (p[0, 0] + p[1, 0])
        pq, pl = _boost_z(p[q], beta), _boost_z(p[lm], beta)
        c = pq[1:] @ pl[1:] / np.linalg.norm(pq[1:]) / np.linalg.norm(pl[1:])
        cos[h[q] == h[lm]].append(c)
    assert 0 < n_z < 2000
    for same, want in ((True, 0.5), (False, -0.5)):
        c = np.array(cos[same])
        assert len(c) > 300
        # sd of cos under (1 +- cos)^2 is sqrt(0.15)
        assert abs(c.mean() - want) < 5 * np.sqrt(0.15 / len(c)), (same, c.mean(), len(c))


def test_resonances_follow_the_event_channel(tmp_path, umami_lib):
    """Two channels: the photon (no width) is never written; the Z only on channel-1 events
    near its pole; the columns an event lacks are left out and the pointers renumbered."""
    proc, info = load_card(_card(tmp_path, umami_lib(), (("photon", PHOTON), ("Z", ZED))))
    ev = ColliderEvents(proc, info["beams"], info["energies"], resonances=info["resonances"],
                        bw_cutoff=info["bw_cutoff"])
    assert [[r.pdg for r in rs] for rs in info["resonances"]] == [[22], [23]]
    rng = np.random.default_rng(1)
    x = rng.random((400, proc.dims))
    chan = rng.integers(0, 2, 400)
    pe = ev.to_particles(SimpleNamespace(x=x, channels=chan), np.ones(400))
    keep, mothers = pe.layout()
    assert pe.pdg[0, 2] == 22 and pe.pdg[0, 3] == 23
    assert not keep[:, 2].any()                       # the photon line never
    mll = pe.masses[:, 3]
    near = np.abs(mll - MZ) <= 5 * WZ
    np.testing.assert_array_equal(keep[:, 3], near & (chan == 1))
    assert near.any() and (near & (chan == 0)).any()
    z = keep[:, 3]
    # after dropping the photon column the Z is line 3 and the leptons point to it
    assert np.all(mothers[z][:, 4:] == 3) and np.all(mothers[~z][:, 4:] == [1, 2])


def test_topologies_from_json_and_priors_without_diagram_amp2(tmp_path, umami_lib):
    """``topologies = "file.json"`` builds the same channels as the inline tables; a library
    without DIAGRAM_AMP2 gets the propagator priors (MadGraph's fallback)."""
    lib = umami_lib()
    proc, _ = load_card(_card(tmp_path, lib, (("photon", PHOTON), ("Z", ZED))))
    chans = [{"name": "photon", "diagram": 0, "topology": {"decay": [0, 1], "nu": 1.0}},
             {"name": "Z", "diagram": 1,
              "topology": {"decay": [0, 1], "mass": MZ, "width": WZ, "pdg": 23}}]
    (tmp_path / "channels.json").write_text(json.dumps(chans))
    proc2, info2 = load_card(_card(tmp_path / "j", lib, (),
                                   process_extra='topologies = "../channels.json"'))
    assert proc2.channel_names == ["photon", "Z"] and proc2.channel_diagrams == [0, 1]
    assert [[r.pdg for r in rs] for rs in info2["resonances"]] == [[], [23]]
    from mcint.collider.card import read_topologies

    read = read_topologies(tmp_path / "channels.json", [0.0, 0.0])
    assert [(n, i) for n, i, _, _ in read] == [("photon", 0), ("Z", 1)]
    assert [d for _, _, d, _ in read] == proc.diagrams
    # [phasespace] invariant_power: the nu of massless s-channel lines that give none
    (tmp_path / "bare.json").write_text(json.dumps([{"topology": {"decay": [0, 1]}}]))
    (_, _, d, _), = read_topologies(tmp_path / "bare.json", [0.0, 0.0], invariant_power=0.8)
    assert d.root.propagator.nu == 0.8
    assert read_topologies(tmp_path / "bare.json", [0.0, 0.0])[0][2].root.propagator.nu is None
    r = np.random.default_rng(2).random((50, proc.dims))
    for c in (0, 1):
        a, b = proc.evaluate(r, c), proc2.evaluate(r, c)
        np.testing.assert_array_equal(a.value, b.value)
        np.testing.assert_allclose(a.alpha_prior, b.alpha_prior, rtol=1e-15)
    proc3, _ = load_card(_card(tmp_path / "n", umami_lib("-DNO_AMP2"),
                               (("photon", PHOTON), ("Z", ZED))))
    assert proc3.channel_diagrams is None
    ev = proc3.evaluate(r, 1)
    mom = proc3.phase_spaces[1].map(r)[0]
    np.testing.assert_allclose(ev.alpha_prior, channel_prior(proc3.diagrams, mom), rtol=1e-12)
    assert not np.allclose(ev.alpha_prior, proc.evaluate(r, 1).alpha_prior)
    # asked for |M_i|^2 priors explicitly, a library without DIAGRAM_AMP2 is one clear error
    from mcint.collider import HadronicProcess

    with pytest.raises(ValueError, match="need DIAGRAM_AMP2"):
        HadronicProcess(proc3.subprocesses, proc3.phase_spaces, proc3.pdf,
                        diagrams=proc3.diagrams, channel_diagrams=[0, 1])


@pytest.mark.parametrize("section,bad,new,hint", [
    ("run", "seed = 5", "sed = 5", "did you mean 'seed'"),
    ("run", 'output_format = "lhe"', 'output_fromat = "lhe"', "did you mean 'output_format'"),
    ("generation", "events = 2000", "event = 2000", "did you mean 'events'"),
    ("vegas", "nitn = 5", "nitm = 5", "did you mean 'nitn'"),
    ("madnis", "nitn = 5", "", ""),
    ("beam", "e_cm = 13000.0", "ecm = 13000.0", "did you mean 'e_cm'"),
    ("phasespace", "bw_cutoff = 5.0", "bw_cutof = 5.0", "did you mean 'bw_cutoff'"),
    ("cuts", "sqrt_s_max = 2000.0", "sqrt_s_maxx = 2000.0", "did you mean 'sqrt_s_max'"),
    ("process", "outgoing = [11, -11]", "outgoin = [11, -11]\noutgoing = [11, -11]",
     "did you mean 'outgoing'"),
    ("process.subprocess", "helicities =", "helicity =", "did you mean 'helicities'"),
    ("process.channel", 'name = "Z"', 'nme = "Z"', "did you mean 'name'"),
    ("topology", "pdg = 23", "pgd = 23", "did you mean 'pdg'"),
])
def test_a_misspelt_key_in_each_section_is_named(tmp_path, umami_lib, capsys, section, bad,
                                                  new, hint):
    card = _card(tmp_path, umami_lib())
    text = card.read_text()
    if section == "madnis":
        text = text.replace("[vegas]\nnitn = 5", "[madnis]\nbatchsize = 100")
        hint = "did you mean 'batch_size'"
    else:
        assert bad in text
        text = text.replace(bad, new, 1)
    card.write_text(text)
    assert main(["run", str(card)]) == 2
    err = capsys.readouterr().err
    assert hint in err and "dy.toml" in err and err.count("\n") == 1, err


def test_run_section_aliases_and_sampler_sections(tmp_path, umami_lib):
    """[run] name / output_format set out / format; [vegas] becomes the VEGAS options and
    picks VEGAS; both sampler sections need `sampler` to choose; an alias and its option
    together are an error."""
    from mcint.cli.config import ConfigError, load_config

    card = _card(tmp_path, umami_lib())
    cfg = load_config(card)
    assert (Path(cfg.out).name, cfg.format, cfg.sampler) == ("out", "lhe", "vegas")
    assert cfg.sampler_options == {"nitn": 5} and cfg.events == 2000
    text = card.read_text()
    card.write_text(text.replace("[vegas]", "[madnis]\nbatch_size = 1000\n[vegas]"))
    with pytest.raises(ConfigError, match="say which runs"):
        load_config(card)
    card.write_text(text.replace("[vegas]", "[madnis]\nbatch_size = 1000\n[vegas]")
                    .replace("seed = 5", 'seed = 5\nsampler = "nis"'))
    cfg = load_config(card)
    assert cfg.sampler == "nis" and cfg.sampler_options == {"batch_size": 1000}
    card.write_text(text.replace('name = "out"', 'name = "out"\nout = "elsewhere"'))
    with pytest.raises(ConfigError, match="sets out twice"):
        load_config(card)


def test_bad_colour_and_helicity_tables_are_refused(tmp_path, umami_lib):
    lib = umami_lib()
    cases = [("[[[501, 0], [0, 502], [0, 0], [0, 0]]]", HELS, "colour tag"),
             ("[[[0, 501], [501, 0], [0, 0], [0, 0]]]", HELS, "cannot carry colour tags"),
             (f"[{FLOWS[1:-1]}, {FLOWS[1:-1]}]", HELS, "COLOR_COUNT"),
             (FLOWS, "[[-1, 1, -1, 1]]", "HELICITY_COUNT"),
             (FLOWS, "[[-2, 1, -1, 1], [1, -1, 1, -1], [-1, 1, 1, -1], [1, -1, -1, 1]]",
              "helicities must list")]
    for i, (flows, hels, msg) in enumerate(cases):
        card = _card(tmp_path / str(i), lib,
                     sub_extra=f"color_flows = {flows}\nhelicities = {hels}\n")
        with pytest.raises(CardError, match=msg):
            load_card(card)


def test_colour_flow_rules():
    inc = [True, True, False, False]
    # q qbar -> g g: both leading-colour flows are valid
    check_color_flow([2, -2, 21, 21], inc, [(501, 0), (0, 502), (501, 503), (503, 502)])
    check_color_flow([2, -2, 21, 21], inc, [(501, 0), (0, 502), (503, 502), (501, 503)])
    # g g -> t tbar, q g -> q g
    check_color_flow([21, 21, 6, -6], inc, [(501, 502), (503, 501), (503, 0), (0, 502)])
    check_color_flow([1, 21, 1, 21], inc, [(501, 0), (502, 501), (503, 0), (502, 503)])
    bad = [([2, -2, 21, 21], [(501, 0), (0, 502), (501, 501), (503, 502)], "same colour"),
           ([2, -2, 21, 21], [(501, 0), (0, 502), (501, 503), (502, 503)], "colour tag 50"),
           ([2, -2, 11, -11], [(501, 0), (0, 501), (0, 0), (0, 501)], "cannot carry"),
           ([21, 21, 6, -6], [(501, 502), (502, 501), (0, 0), (0, 0)], "cannot carry")]
    for pdg, cols, msg in bad:
        with pytest.raises(ValueError, match=msg):
            check_color_flow(pdg, inc, cols)
    # t -> b W+: the top carries the b's colour; a colour-singlet pair has none
    assert net_color([(503, 0), (0, 0)]) == (503, 0)
    assert net_color([(503, 0), (0, 503)]) == (0, 0)
    with pytest.raises(ValueError, match="one resonance"):
        net_color([(501, 0), (502, 0)])


GG_FLOWS = ("[[[501, 0], [0, 502], [501, 503], [503, 502]], "
            "[[501, 0], [0, 502], [503, 502], [501, 503]]]")


def _qqbar_gg_weights(pq, qbar, g3):
    """Pythia's colour-flow weights of q qbar -> g g (flow 0: the quark's colour to g3)."""
    def dot(a, b):
        return a[..., 0] * b[..., 0] - np.sum(a[..., 1:] * b[..., 1:], axis=-1)
    s, t = 2 * dot(pq, qbar), -2 * dot(pq, g3)
    u = -s - t
    return 16 / 27 * u / t - 4 / 3 * u * u / (s * s), 16 / 27 * t / u - 4 / 3 * t * t / (s * s)


def test_qqbar_gg_library_against_the_textbook_formula(umami_lib):
    """|M|^2 of the two-flow library against ESW table 7.1 (with the 1/2 for identical gluons);
    its colour index follows the flow weights for uniform RANDOM_COLOR."""
    from mcint import umami

    me = umami.load(umami_lib(source="qqbar_gg.c"))
    assert me.color_count == 2 and me.diagram_count is None and me.helicity_count is None
    rng = np.random.default_rng(3)
    n, e = 4000, 250.0
    z = rng.uniform(-0.95, 0.95, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    st = np.sqrt(1 - z * z)
    p = np.zeros((n, 4, 4))
    p[:, 0] = [e, 0, 0, e]
    p[:, 1] = [e, 0, 0, -e]
    p[:, 2] = np.stack([np.full(n, e), e * st * np.cos(phi), e * st * np.sin(phi), e * z], 1)
    p[:, 3] = p[:, 0] + p[:, 1] - p[:, 2]
    a_s = rng.uniform(0.1, 0.13, n)
    out = me(p, alpha_s=a_s, random_color=rng.random(n), outputs=("matrix_element",
                                                                  "color_index"))
    s, t, u = 4 * e * e, -2 * e * e * (1 - z), -2 * e * e * (1 + z)
    g4 = (4 * np.pi * a_s) ** 2
    want = 0.5 * g4 * (32 / 27 * (t * t + u * u) / (t * u) - 8 / 3 * (t * t + u * u) / (s * s))
    np.testing.assert_allclose(out["matrix_element"], want, rtol=1e-12)
    w0, w1 = _qqbar_gg_weights(p[:, 0], p[:, 1], p[:, 2])
    p0 = w0 / (w0 + w1)
    assert np.all(w0 > 0) and np.all(w1 > 0)
    got = out["color_index"] == 0
    assert abs(got.mean() - p0.mean()) < 5 * np.sqrt(np.sum(p0 * (1 - p0))) / n


def test_lhe_colour_flows_of_a_two_flow_library(tmp_path, umami_lib):
    """p p -> g g through the q qbar -> g g library: every event's colour flow obeys the LHE
    rules (each tag twice, one colour and one anticolour end; quark / antiquark / gluon tags),
    also for the mirrored initial states whose legs the library sees swapped; the flow chosen
    per event follows its weights computed from the event's own momenta (so the tables were
    mapped to the right columns); AQCDUP is the set's alpha_s at the scale."""
    pylhe = pytest.importorskip("pylhe")
    from mcint.pdf import PDFSet

    lib = umami_lib(source="qqbar_gg.c")
    card = _card(tmp_path, lib, (("s", "{decay = [0, 1], nu = 1.0}"),),
                 sub_extra=f"color_flows = {GG_FLOWS}\nalpha_s = true\n")
    text = card.read_text().replace("outgoing = [11, -11]", "outgoing = [21, 21]")
    text = text.replace("sqrt_s_max = 2000.0", "sqrt_s_max = 2000.0\npt_min = {jet = 50.0}")
    text = text.replace("[[2, -2, 1], [1, -1, 2]]", "[[2, -2, 0], [1, -1, 0]]")
    card.write_text(text)
    assert main(["run", str(card)]) == 0
    events = list(pylhe.LHEFile.fromfile(tmp_path / "out" / "events.lhe").events)
    assert len(events) == 2000
    pdfs = PDFSet.load(str(tmp_path / "pdfs" / "ToySynth"))
    chosen, p0 = [], []
    swapped = 0
    for e in events:
        ps = e.particles
        pid = [int(q.id) for q in ps]
        col = [(int(q.color1), int(q.color2)) for q in ps]
        inc = [int(q.status) == -1 for q in ps]
        assert pid[2:] == [21, 21] and sorted(pid[:2], key=abs) in ([-1, 1], [-2, 2]) or \
            sorted(pid[:2]) in ([-1, 1], [-2, 2])
        # independent check of the LHE colour rules
        ends: dict[int, list[str]] = {}
        for i, (c, a) in enumerate(col):
            if pid[i] > 0 and pid[i] != 21:
                assert c > 0 and a == 0
            elif pid[i] < 0:
                assert c == 0 and a > 0
            else:
                assert c > 0 and a > 0 and c != a
            for tag, kind in ((c, "c"), (a, "a")):
                if tag:
                    # an incoming colour is an outgoing anticolour
                    ends.setdefault(tag, []).append(kind if not inc[i] else
                                                    {"c": "a", "a": "c"}[kind])
        assert all(sorted(v) == ["a", "c"] for v in ends.values()), (pid, col)
        p = np.array([[q.e, q.px, q.py, q.pz] for q in ps])
        q = 0 if pid[0] > 0 else 1
        swapped += q == 1
        w0, w1 = _qqbar_gg_weights(p[q], p[1 - q], p[2])
        p0.append(w0 / (w0 + w1))
        chosen.append(col[2][0] == col[q][0])
        assert abs(e.eventinfo.aqcd - float(pdfs.alpha_s(e.eventinfo.scale ** 2))) < 1e-9
    chosen, p0 = np.array(chosen), np.array(p0)
    assert 300 < swapped < 1700
    for sel in (p0 > 0.5, p0 <= 0.5):
        c, w = chosen[sel], p0[sel]
        assert len(c) > 200
        assert abs(c.mean() - w.mean()) < 5 * np.sqrt(np.sum(w * (1 - w))) / len(c), \
            (c.mean(), w.mean())


@pytest.mark.parametrize("fmt", ["lhe", "lheh5"])
def test_events_with_and_without_a_resonance_line_round_trip(tmp_path, fmt):
    """Columns an event lacks are not written (NUP / nparticles per event), mother pointers
    are renumbered, SPINUP per particle; reading back keeps the external particles."""
    if fmt == "lheh5":
        pytest.importorskip("h5py")
    pylhe = pytest.importorskip("pylhe")
    from mcint.events import ParticleEvents, RunInfo, open_writer, read_events

    rng = np.random.default_rng(4)
    n = 6
    e = rng.uniform(50, 100, n)
    c, phi = rng.uniform(-1, 1, n), rng.uniform(0, 6, n)
    s = np.sqrt(1 - c * c)
    p = np.zeros((n, 5, 4))
    p[:, 0] = np.stack([e, 0 * e, 0 * e, e], 1)
    p[:, 1] = np.stack([e, 0 * e, 0 * e, -e], 1)
    p[:, 3] = np.stack([e, e * s * np.cos(phi), e * s * np.sin(phi), e * c], 1)
    p[:, 4] = p[:, 0] + p[:, 1] - p[:, 3]
    p[:, 2] = p[:, 3] + p[:, 4]
    present = np.ones((n, 5), bool)
    present[::2, 2] = False
    mothers = np.array([[0, 0], [0, 0], [1, 2], [3, 3], [3, 3]])
    spin = np.array([-1, 1, 9, 1, -1.0])
    # without the Z its daughters would point to an absent line: refused
    bad = ParticleEvents(p, [2, -2, 23, 11, -11], [-1, -1, 2, 1, 1], np.ones(n),
                         mothers=mothers, spin=spin, present=present)
    with pytest.raises(ValueError, match="absent"):
        bad.layout()
    path = tmp_path / f"ev.{fmt}"
    with open_writer(path, RunInfo(1.0, 0.1)) as w:
        moth = np.broadcast_to(mothers, (n, 5, 2)).copy()
        moth[~present[:, 2], 3:] = [1, 2]
        w.write(ParticleEvents(p, [2, -2, 23, 11, -11], [-1, -1, 2, 1, 1], np.ones(n),
                               mothers=moth, spin=spin, present=present))
    back = read_events(path)
    assert back.momenta.shape == (n, 4, 4)
    np.testing.assert_allclose(back.momenta, p[:, [0, 1, 3, 4]], rtol=1e-9)
    np.testing.assert_array_equal(back.pdg[0], [2, -2, 11, -11])
    if fmt == "lhe":
        for i, e_ in enumerate(pylhe.LHEFile.fromfile(path).events):
            ids = [int(q.id) for q in e_.particles]
            assert (23 in ids) == bool(present[i, 2])
            lep = e_.particles[-1]
            assert (lep.mother1, lep.mother2) == ((3, 3) if present[i, 2] else (1, 2))
            assert [q.spin for q in e_.particles if q.status != 2] == [-1, 1, 1, -1]


def test_nested_resonances_pointers_and_colour():
    """u dbar -> t bbar, t -> W+ b, W+ -> e+ nu: the top carries the b's colour line, the W
    points to the top, and where the W is off its window its daughters point to the top."""
    from mcint.collider import EventRecord, Resonance

    rng = np.random.default_rng(6)

    def massless(e):
        c, phi = rng.uniform(-1, 1), rng.uniform(0, 6)
        s = np.sqrt(1 - c * c)
        return np.array([e, e * s * np.cos(phi), e * s * np.sin(phi), e * c])

    fin = np.array([[massless(e) for e in (40.0, 50.0, 60.0, 70.0)] for _ in range(2)])
    tot = fin.sum(axis=1)
    mom = np.zeros((2, 6, 4))
    mom[:, 2:] = fin
    # the incoming legs only need energies here (this tests the bookkeeping, not kinematics)
    m = np.sqrt(tot[:, 0] ** 2 - np.sum(tot[:, 1:] ** 2, axis=1))
    for i in range(2):
        ep, em = (tot[i, 0] + tot[i, 3]) / 2, (tot[i, 0] - tot[i, 3]) / 2
        mom[i, 0], mom[i, 1] = [ep, 0, 0, ep], [em, 0, 0, -em]
    w_mass = np.sqrt(max(np.sum(fin[0, :2, 0]) ** 2 - np.sum(fin[0, :2].sum(0)[1:] ** 2), 0))
    t_mass = float(np.sqrt((fin[0, :3].sum(0)[0]) ** 2 - np.sum(fin[0, :3].sum(0)[1:] ** 2)))
    rec = EventRecord(mom, np.tile([2, -1, -11, 12, 5, -5], (2, 1)), np.ones(2), np.ones(2),
                      m, None, np.tile(np.array([[501, 0], [0, 501], [0, 0], [0, 0], [502, 0],
                                                 [0, 502]]), (2, 1, 1)),
                      np.full((2, 6), 9.0))
    proc = SimpleNamespace(n_channels=1, record=lambda x, c, rng: rec)
    res = [[Resonance(6, t_mass, 1e6, (0, 1, 2)), Resonance(24, w_mass, 1e-6, (0, 1), 0)]]
    ev = ColliderEvents(proc, (2212, 2212), (6500.0, 6500.0), resonances=res)
    pe = ev.to_particles(SimpleNamespace(x=np.zeros((2, 2)), channels=None), np.ones(2))
    keep, mothers = pe.layout()
    # columns: u dbar t W e+ nu b bbar; event 0 keeps the W, event 1 does not
    np.testing.assert_array_equal(keep, [[1] * 8, [1, 1, 1, 0, 1, 1, 1, 1]])
    np.testing.assert_array_equal(mothers[0], [[0, 0], [0, 0], [1, 2], [3, 3], [4, 4], [4, 4],
                                               [3, 3], [1, 2]])
    np.testing.assert_array_equal(mothers[1][keep[1]], [[0, 0], [0, 0], [1, 2], [3, 3], [3, 3],
                                                        [3, 3], [1, 2]])
    np.testing.assert_array_equal(pe.colors[:, 2], [[502, 0], [502, 0]])
    np.testing.assert_array_equal(pe.colors[:, 3], [[0, 0], [0, 0]])
    np.testing.assert_allclose(pe.momenta[:, 2], fin[:, :3].sum(axis=1))
    assert abs(pe.masses[0, 3] - w_mass) < 1e-9 * w_mass
