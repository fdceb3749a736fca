"""The printed end-of-run summary against run.json: every number a user reads on the screen is
the one the run file records, with its unit and the sample it comes from (issue: one
consistent summary)."""

from __future__ import annotations

import json
import math
import re

import pytest

from mcint.cli import main

pytest.importorskip("torch")

NUM = r"([-+0-9.eE]+)"


def _close(printed: str, value: float, digits: int) -> None:
    """``printed`` is ``value`` rounded to ``digits`` significant digits: within half a unit
    of the last printed digit."""
    p = float(printed)
    ulp = 10 ** (math.floor(math.log10(abs(value))) - digits + 1) if value else 1e-300
    assert abs(p - value) <= 0.51 * ulp + 1e-12 * abs(value), (printed, value)


def test_drell_yan_summary_agrees_with_run_json(tmp_path, capsys):
    out_dir = tmp_path / "dy"
    rc = main(["run", "drell-yan", "--events", "1000", "--train-calls", "8000",
               "--integrate-calls", "6000", "--calibration-calls", "20000", "--progress",
               "none", "--no-plot", "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rep = json.loads((out_dir / "run.json").read_text())
    res, m, uw = rep["result"], rep["metrics"], rep["unweighting"]
    assert rep["unit"] == "pb"

    head = re.search(rf"integral .* = {NUM} \+- {NUM} pb  \(rel\. error {NUM}; (\d+) "
                     r"integration points\)", out)
    _close(head[1], res["value"], 6)
    _close(head[2], res["error"], 2)
    assert int(head[4]) == res["calls"]
    ex = re.search(rf"exact +{NUM} pb  \(pull {NUM} sigma\)", out)
    _close(ex[1], rep["exact"], 6)
    _close(ex[2], (res["value"] - rep["exact"]) / res["error"], 3)

    w1 = re.search(rf"rel\. std {NUM} \(error x sqrt\(N\) / \|I\|\), ESS/N {NUM} \(of the raw "
                   rf"weights\) over the (\d+) integration points", out)
    _close(w1[1], m["rel_std"], 4)
    _close(w1[2], m["ess"] / res["calls"], 3)
    assert int(w1[3]) == res["calls"]
    w2 = re.search(rf"rel\. std {NUM}, ESS/N {NUM} over the (\d+) calibration points", out)
    _close(w2[1], m["sample_rel_std"], 4)
    _close(w2[2], m["sample_ess"] / uw["calibration_points"], 3)
    assert int(w2[3]) == uw["calibration_points"] == 20000

    u1 = re.search(rf"w_max {NUM} pb for a {NUM}% overweight budget on the calibration "
                   rf"points \(expected efficiency {NUM}%\)", out)
    _close(u1[1], uw["w_max"], 4)
    _close(u1[2], 100 * uw["budget"], 3)
    _close(u1[3], 100 * uw["expected_efficiency"], 3)
    u2 = re.search(rf"events from (\d+) points: efficiency {NUM}%, overweights truncated "
                   rf"{NUM}% of sigma \((\d+) events\), sigma ([0-9.()]+) pb", out)
    assert int(u2[1]) == uw["trials"]
    _close(u2[2], 100 * uw["efficiency"], 3)
    _close(u2[3], 100 * uw["overweight_fraction"], 3)
    assert int(u2[4]) == uw["overweight_events"]
    central = float(u2[5].split("(")[0])
    assert abs(central - uw["sigma"]) <= 0.51 * 10 ** -len(u2[5].split("(")[0].split(".")[1])
    assert re.search(rf"events +{rep['events']['n']} unweighted -> ", out)

    table = out[out.index("channels (integration points):"):]
    for ch in rep["channels"]:
        row = re.search(rf"\n  {ch['channel']} +\S+ +{NUM}% +{NUM} +(\d+)", table)
        _close(row[1], 100 * ch["share"], 3)
        _close(row[2], ch["rel_std"], 3)
        assert int(row[3]) == ch["count"]
    assert sum(ch["count"] for ch in rep["channels"]) == res["calls"]
