"""The regime-map view renders the precomputed map and shows its numbers (AppTest, headless)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")
MAP = REPO / "app_lib" / "data" / "regime_map" / "regime_map.json"
TIMEOUT = 120  # a cold AppTest run imports torch/plotly


def open_view(view: str = "regime_map", **widgets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["view"] = view
    for key, value in widgets.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize(("claim", "centre"), [("entropy", "entropy"), ("passk", "passk")])
def test_regime_map_view_shows_the_precomputed_rows(claim, centre):
    data = json.loads(MAP.read_text())
    rows = pd.DataFrame(data["rows"])
    expected = rows[(rows.claim == claim) & (rows.centre == centre)]
    assert len(expected) > 0
    at = open_view(map_claim=claim, map_centre=centre)
    shown = at.dataframe[0].value
    assert len(shown) == len(expected)
    # the same differences, as a multiset (the view reorders rows by axis)
    assert sorted(shown["difference"].round(12)) == pytest.approx(sorted(expected["difference"].round(12)), abs=1e-12)
    metrics = {m.label: m.value for m in at.metric}
    for verdict in ("holds", "fails", "not resolved"):
        assert int(metrics[verdict]) == int((expected.verdict == verdict).sum())
    (fig,) = [e for e in at.get("plotly_chart") if e.proto.id.endswith("-fig_regime_map")]
    spec = json.loads(fig.proto.spec)
    heat = spec["data"][0]
    assert heat["type"] == "heatmap"
    # every measured cell carries its difference as text; hover text names the interval
    cells = [t for line in heat["text"] for t in line if t]
    assert len(cells) == len(expected)
    hover = [h for line in heat["customdata"] for h in line if "CI" in h]
    assert len(hover) == len(expected)


def test_regime_map_verdicts_follow_the_rule():
    """Each stored verdict is the rule applied to its interval (recomputed here, not imported)."""
    rows = json.loads(MAP.read_text())["rows"]
    for r in rows:
        lo, hi = r["ci_low"], r["ci_high"]
        assert math.isfinite(lo) and lo <= r["difference"] <= hi
        want = "holds" if lo > 0 else "fails" if hi < 0 else "not resolved"
        assert r["verdict"] == want
        assert r["seeds"] >= 8 and r["framing"] == "equal_steps"


@pytest.mark.parametrize(
    ("preset", "claim", "centre", "axes"),
    [
        ("riskpo_entropy", "entropy", "entropy", ("centre", "steps")),
        ("passk", "passk", "passk", ("centre",)),
        ("bundle_sweep", "bundle_size", "entropy", ("centre", "bundle_size")),
    ],
)
def test_preset_boxes_show_the_measured_verdict_next_to_the_paper(preset, claim, centre, axes):
    rows = json.loads(MAP.read_text())["rows"]
    mine = [r for r in rows if r["claim"] == claim and r["centre"] == centre and r["axis"] in axes]
    if preset == "riskpo_entropy":  # the preset's box shows the centre (150 steps) and the 300-step point
        mine = [r for r in mine if r["axis"] == "centre" or r["value"] == 300]
    verdicts = [r["verdict"] for r in mine]
    want = "fails" if "fails" in verdicts else "holds" if all(v == "holds" for v in verdicts) else "not resolved"
    at = open_view("presets", preset=preset)
    boxes = [e.value for e in [*at.warning, *at.success, *at.info] if "The paper says" in e.value]
    assert len(boxes) == 1
    assert f"Verdict: {want}" in boxes[0]
    assert ("contradicts the paper" in boxes[0]) == (want == "fails")
    assert boxes[0].count("→") == len(mine)  # one line per measured comparison


def test_passk_preset_draws_seed_bands_from_the_shipped_std():
    raw = pd.read_csv(REPO / "app_lib" / "data" / "presets" / "passk.csv")
    last = raw[raw["step"] == raw["step"].max()]
    at = open_view("presets", preset="passk")
    (fig,) = [e for e in at.get("plotly_chart") if e.proto.id.endswith("-fig_preset_passk")]
    spec = json.loads(fig.proto.spec)
    end = [t for t in spec["data"] if t.get("xaxis", "x") == "x"]  # left panel: end of training
    assert end
    for trace in end:
        want = last[last["estimator"] == trace["name"]].sort_values("k")["pass_at_k_std"].to_numpy()
        got = trace["error_y"]["array"]
        got = got if isinstance(got, list) else _decode(got)
        assert len(want) > 0 and got == pytest.approx(list(want), abs=1e-12)


def _decode(node):
    import base64

    import numpy as np

    return np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"])).tolist()
