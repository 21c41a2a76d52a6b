"""app_lib.compare_panels through Streamlit's AppTest: the figures carry the folder's numbers.

The results folder is made by llm.compare.report from synthetic evaluations
(no model), so the test is fast; the values the browser receives are compared
with passk.csv and the fixture run's literal metrics.jsonl values.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compare_fixtures import FIXTURE_RUN, synthetic_results
from streamlit.testing.v1 import AppTest

from llm.compare.report import write_results

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
import streamlit as st
from app_lib.compare_panels import render
render(st, {folders!r})
"""


def _decode(node):
    """Plotly JSON ships numeric arrays as {"dtype", "bdata"}; turn them back into lists."""
    if isinstance(node, dict):
        if "bdata" in node and "dtype" in node:
            values = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
            return values.reshape(node["shape"]).tolist() if "shape" in node else values.tolist()
        return {key: _decode(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_decode(value) for value in node]
    return node


def run_view(folders) -> AppTest:
    at = AppTest.from_string(SCRIPT.format(repo=str(REPO), folders=[str(f) for f in folders]), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def figures(at: AppTest) -> list[dict]:
    return [_decode(json.loads(e.proto.spec)) for e in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def results_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("compare_results")
    write_results(folder, synthetic_results(folder), [1, 2, 4, 8], bootstrap=200)
    return folder


def test_view_draws_passk_with_bands_and_simulator_absent(results_folder):
    at = run_view([results_folder])
    assert not at.error
    curves_fig, passk_fig = figures(at)
    passk = pd.read_csv(results_folder / "passk.csv")
    for policy in ("base", "grpo-s0", "riskpo-s0", "rs_grpo-s0"):
        method = passk.loc[passk["policy"] == policy, "method"].iloc[0]
        expected = passk[passk["policy"] == policy].sort_values("k")
        line = next(t for t in passk_fig["data"] if t["name"] == method)
        assert line["x"] == [1, 2, 4, 8]
        np.testing.assert_allclose(line["y"], expected["pass_at_k"], atol=1e-12)
        band = next(t for t in passk_fig["data"] if t["name"] == f"{method} band")
        np.testing.assert_allclose(band["y"][:4], expected["ci_high"], atol=1e-12)
        np.testing.assert_allclose(band["y"][4:], expected["ci_low"].tolist()[::-1], atol=1e-12)
    table = at.dataframe[0].value
    assert list(table.columns) == ["label", "pass@1", "pass@2", "pass@4", "pass@8"]
    curves = pd.read_csv(results_folder / "curves.csv")
    entropy = next(t for t in curves_fig["data"] if t["name"] == "riskpo" and t["xaxis"] == "x2")
    np.testing.assert_allclose(entropy["y"], curves[curves["method"] == "riskpo"]["entropy"], atol=1e-12)


def test_view_on_a_plain_training_run_and_side_by_side(results_folder):
    at = run_view([FIXTURE_RUN])
    (fig,) = figures(at)  # curves only: a training run has no pass@k
    reward = next(t for t in fig["data"] if t["name"] == "riskpo" and t["xaxis"] == "x")
    assert reward["x"] == [1, 2] and reward["y"] == [0.25, 0.35]
    assert any("cov_logp_adv" in c.value for c in at.caption)  # a metric the run did not log is named
    # the simulator prediction for the run's estimator, computed on request (curves row 2, pass@k panel)
    at.checkbox(key="simulate_0").check().run()
    assert not at.exception, at.exception
    curves_fig, passk_fig = figures(at)
    simulated = [t for t in curves_fig["data"] if t["name"] == "riskpo" and t["line"]["dash"] == "dash"]
    assert simulated and simulated[0]["x"][0] == 0
    sim_passk = next(t for t in passk_fig["data"] if t["name"] == "riskpo (sim)")
    assert sim_passk["x"] == [1, 2, 4, 8, 16] and sim_passk["y"] == sorted(sim_passk["y"])
    at = run_view([results_folder, FIXTURE_RUN])
    names = {t["name"] for t in figures(at)[0]["data"]}
    assert {f"{results_folder.name} · grpo", "riskpo-run · riskpo"} <= names


def test_view_reports_a_bad_folder():
    at = run_view(["/nonexistent/folder"])
    assert "not a directory" in at.error[0].value


def test_view_on_shipped_results():
    shipped = sorted((REPO / "docs" / "compare").glob("*/passk.csv"))
    if not shipped:
        pytest.skip("no comparison results shipped under docs/compare/ yet")
    at = run_view([p.parent for p in shipped])
    assert not at.error and len(figures(at)) == 2


def test_view_offers_downloads_and_svg_export(results_folder):
    at = run_view([results_folder])
    labels = [button.proto.label for button in at.get("download_button")]
    # CSV + HTML for the curves and for pass@k vs k (issue 21: the LM comparison had no downloads)
    assert labels.count("⬇ data (CSV)") == 2 and labels.count("⬇ figure (HTML)") == 2
    for element in at.get("plotly_chart"):
        config = json.loads(element.proto.config)
        assert config["toImageButtonOptions"]["format"] == "svg"  # the toolbar's camera saves vector figures
