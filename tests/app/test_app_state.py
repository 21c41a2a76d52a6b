"""The explorer's settings, URL state, exports and view registry, and regressions of page defects
(file watcher, 100-arm rewards, preset defaults, 25 000 bandit steps, the inspected c).

Each page test drives app.py headlessly (Streamlit's AppTest) and checks what the page shows;
the expected numbers come from the sandbox run directly or from closed forms.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomllib
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")
TIMEOUT = 120


def start(query: dict | None = None, **widgets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in widgets.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def figure(at: AppTest, key: str) -> dict:
    """The figure drawn by ``st.plotly_chart(..., key=key)`` (plotly JSON; arrays may be typed)."""
    import base64
    import json

    def decode(node):
        if isinstance(node, dict):
            if "bdata" in node and "dtype" in node:
                return np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"])).tolist()
            return {k: decode(v) for k, v in node.items()}
        return [decode(v) for v in node] if isinstance(node, list) else node

    (match,) = [e for e in at.get("plotly_chart") if e.proto.id.endswith(f"-{key}")]
    return decode(json.loads(match.proto.spec))


# --------------------------------------------------------------------------- the file watcher


def test_streamlit_config_turns_the_file_watcher_off():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["fileWatcherType"] == "none"
    # Every option named in the file is one Streamlit knows (a typo would be ignored silently).
    from streamlit import config as st_config

    known = set(st_config.get_config_options())
    for section, options in config.items():
        for option in options:
            assert f"{section}.{option}" in known, f"{section}.{option}"


# --------------------------------------------------------------------------- 100-arm rewards in [0, 1]


def test_100_arm_rewards_are_exactly_in_unit_interval_and_passk_runs_on_them():
    from sandbox.bandit import rs_grpo_paper_rewards

    rewards = np.asarray(rs_grpo_paper_rewards())
    assert rewards.min() >= 0.0 and rewards.max() <= 1.0  # was 1 + 1.1e-11 at arm 40
    # ... and the message names the offending value with enough digits to be true (it printed "1").
    import torch

    from theory import get_estimator

    with pytest.raises(ValueError, match=r"1\.00000000001"):
        get_estimator("passk_chen", k=2)(torch.tensor([[0.1, 1 + 1.1e-11, 0.5, 0.2]], dtype=torch.float64))
    at = start(
        {"view": "bandit"},
        estimators=["passk_chen", "grpo"],
        bandit_preset="100-arm (RS-GRPO §5.1)",
        bandit_update="sampled",
        bandit_steps=20,
        bandit_seeds=1,
        bandit_lr=0.1,
    )
    for noise in ("none", "bernoulli"):
        at.selectbox(key="bandit_noise").set_value(noise).run()
        assert not at.exception and not errors(at), errors(at)
        assert len(at.dataframe[0].value) == 2


# --------------------------------------------------------------------------- preset defaults


def test_switching_the_bandit_problem_applies_its_defaults():
    at = start({"view": "bandit"}, estimators=["dr_grpo"], bandit_steps=20)
    assert at.radio(key="bandit_update").value == "exact" and at.select_slider(key="bandit_lr").value == 0.5
    at.selectbox(key="bandit_preset").set_value("100-arm (RS-GRPO §5.1)")
    at.select_slider(key="bandit_steps").set_value(20)  # keep the test short; the preset's own default is 1000
    at.run()
    assert not at.exception
    assert at.radio(key="bandit_update").value == "sampled"
    assert at.select_slider(key="bandit_lr").value == 0.1  # the RS-GRPO paper's η
    assert at.slider(key="bandit_batch").value == 16
    # Also-list: the problem names fit their box (they were cut off at ~30 characters in a quarter-width column).
    from app_lib.views.bandit import BANDIT_PRESETS

    assert max(len(label) for label in BANDIT_PRESETS) <= 22


# --------------------------------------------------------------------------- the URL


def test_url_sets_every_widget_and_follows_the_view():
    at = start(
        {"view": "theorems", "alpha": "0.3", "omega": "1.5", "estimators": "grpo,riskpo", "thm2_instances": "300"}
    )
    assert at.slider(key="alpha").value == 0.3 and at.slider(key="omega").value == 1.5
    assert at.multiselect(key="estimators").value == ["grpo", "riskpo"]
    assert at.slider(key="thm2_instances").value == 300
    assert "α = 0.3" in " ".join(c.value for c in at.caption)  # the value reached the Theorem 2 check
    assert at.query_params["view"] == ["theorems"] or at.query_params["view"] == "theorems"
    at.radio(key="view").set_value("shapes").run()
    params = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert params["view"] == "shapes"  # was stuck at the first view's value
    assert params["alpha"] == "0.3" and params["estimators"] == "grpo,riskpo"
    assert "thm2_instances" not in params  # only the widgets on the page
    assert params["num_correct"] == "1" and params["bundle_acc"] == "0.2,0.8"


def test_a_view_left_and_reopened_keeps_its_settings():
    at = start({"view": "bandit"}, estimators=["grpo"])
    at.select_slider(key="bandit_steps").set_value(20).run()
    at.select_slider(key="bandit_lr").set_value(0.2).run()
    at.radio(key="view").set_value("shapes").run()
    at.radio(key="view").set_value("bandit").run()
    assert not at.exception
    assert at.select_slider(key="bandit_steps").value == 20 and at.select_slider(key="bandit_lr").value == 0.2
    params = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert params["bandit_steps"] == "20" and params["bandit_lr"] == "0.2"


def test_old_numeric_view_links_and_bad_values_are_explained():
    at = start({"view": "2", "alpha": "abc", "k": "99"}, bandit_steps=20, estimators=["grpo"])
    assert at.header[0].value.startswith("Bandit runs")
    warnings = [w.value for w in at.warning]
    assert any("alpha='abc'" in w and "not a number" in w for w in warnings), warnings
    assert any("k='99'" in w and "[1, 32]" in w for w in warnings), warnings
    assert at.slider(key="alpha").value == 0.2 and at.slider(key="k").value == 4


# --------------------------------------------------------------------------- 25 000 steps


def test_bandit_steps_reach_the_papers_25000_updates():
    at = start({"view": "bandit"}, estimators=["grpo"], bandit_steps=20)
    assert max(int(o) for o in at.select_slider(key="bandit_steps").options) == 25_000


# --------------------------------------------------------------------------- clamping the inspected c


def test_changing_g_clamps_inspect_c_instead_of_resetting_it():
    at = start(estimators=["grpo"], tab_steps=10, tab_seeds=1, tab_prompts=10)
    at.slider(key="num_correct").set_value(5).run()
    at.slider(key="group_size").set_value(12).run()
    assert at.slider(key="num_correct").value == 5  # was reset to 1
    at.slider(key="group_size").set_value(3).run()
    assert at.slider(key="num_correct").value == 3  # clamped to G
    assert "c = 3 of G = 3" in " ".join(m.value for m in at.markdown)
    # The same when G shrinks while view 1 is not shown (its c is restored, then clamped).
    at.slider(key="group_size").set_value(12).run()
    at.slider(key="num_correct").set_value(10).run()
    # On a view that reads G (the theorem view draws it disabled: it does not use G).
    at.radio(key="view").set_value("tabular").run()
    at.slider(key="group_size").set_value(6).run()
    at.radio(key="view").set_value("shapes").run()
    assert not at.exception and at.slider(key="num_correct").value == 6


# --------------------------------------------------------------------------- colours, exports, the view registry


def test_rs_grpo_betas_get_a_sequential_scale_and_sorted_legend():
    from sandbox.plots import beta_colour, colour_map, legend_order

    def luminance(colour: str) -> float:
        r, g, b = (float(v) for v in colour[colour.index("(") + 1 : -1].split(","))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    betas = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    lum = [luminance(beta_colour(b)) for b in betas]
    assert all(a > b for a, b in zip(lum, lum[1:]))  # Plasma reversed: darker colour for larger β
    labels = ["grpo", "rs_grpo (β=8)", "riskpo (α=0.2)", "rs_grpo (β=0.5)"]
    assert legend_order(labels) == ["grpo", "rs_grpo (β=0.5)", "riskpo (α=0.2)", "rs_grpo (β=8)"]
    colours = colour_map(labels)
    assert colours["rs_grpo (β=8)"] == beta_colour(8.0)  # independent of what else is selected
    at = start(estimators=["rs_grpo"], rs_beta=4.0, rs_betas_extra=[0.5, 16.0])
    assert list(at.dataframe[0].value["estimator"]) == ["rs_grpo (β=0.5)", "rs_grpo (β=4)", "rs_grpo (β=16)"]


def test_theorem_view_explains_families_and_draws_distinct_prop1_series():
    at = start({"view": "theorems"}, thm2_instances=200, lemma_instances=20)
    captions = " ".join(c.value for c in at.caption)
    assert "u_shaped: graded rewards" in captions and "lm_like: rewards piled at 0 and 1" in captions
    infos = " ".join(i.value for i in at.info)
    assert "Assumption 1" in infos and "What to conclude" in infos
    prop1 = figure(at, "fig_prop1")
    series = [t for t in prop1["data"] if t.get("mode") == "lines+markers"]
    assert len(series) == 2
    # The two drawn series differ by orders of magnitude at small η (they coincided before).
    assert series[0]["y"][-1] / series[1]["y"][-1] > 100
    thm2 = figure(at, "fig_thm2")
    assert thm2["layout"]["margin"]["t"] >= 80  # room for the toolbar above the subplot titles


# --------------------------------------------------------------------------- exports


def test_exports_carry_the_settings_that_reproduce_them():
    from app_lib import ui
    from app_lib.figures import advantage_shape_figure

    values = {"view": "shapes", "alpha": 0.3, "estimators": ["grpo"], "bundle_acc": (0.2, 0.8)}
    table = pd.DataFrame({"c": [0, 1], "adv": [0.5, -0.25]})
    header = ui.settings_header(values)
    assert header["url_query"] == "?view=shapes&alpha=0.3&estimators=grpo&bundle_acc=0.2%2C0.8"
    csv = ui.csv_with_settings(table, header)
    import io

    assert pd.read_csv(io.BytesIO(csv), comment="#").equals(table)
    assert ui.read_settings(csv)["settings"] == {
        "view": "shapes",
        "alpha": 0.3,
        "estimators": ["grpo"],
        "bundle_acc": [0.2, 0.8],
    }
    with_provenance = dict(header, provenance={"command": "python -m app_lib.presets_build --only passk", "seeds": 6})
    assert ui.read_settings(ui.csv_with_settings(table, with_provenance))["provenance"]["seeds"] == 6
    fig = advantage_shape_figure(
        pd.DataFrame(
            {
                "estimator": ["grpo"] * 2,
                "c": [0, 1],
                "p_hat": [0, 1],
                "adv_correct": [math.nan, 0],
                "adv_incorrect": [0, math.nan],
                "sum_abs_adv": [0, 0],
            }
        )
    )
    page = ui.html_with_settings(fig, header).decode()
    assert 'id="riskrl-settings"' in page and "view=shapes&amp;alpha=0.3" in page


def test_view_registry_adds_a_view_from_a_module(tmp_path, monkeypatch):
    from app_lib import views

    (tmp_path / "extra_view_for_test.py").write_text(
        "from app_lib.views import register_view\n"
        "SEEN = []\n"
        "@register_view('extra_view_for_test', '9 · Extra', order=90, needs_estimators=False)\n"
        "def render(ctx):\n"
        "    SEEN.append(ctx)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    views.load_views()  # register the built-ins in the real registry first: a copy taken before would keep them
    monkeypatch.setattr(views, "VIEWS", dict(views.VIEWS))
    listed = views.load_views((*views.VIEW_MODULES, "extra_view_for_test"))
    titles = [v.title for v in listed]
    assert titles[-1] == "9 · Extra" and "7 · LM comparison" in titles
    listed[-1].render("ctx")
    import extra_view_for_test

    assert extra_view_for_test.SEEN == ["ctx"] and listed[-1].needs_estimators is False
    assert views.find_view(listed, "extra_view_for_test").title == "9 · Extra"
    assert views.find_view(listed, "2").slug == "bandit" and views.find_view(listed, "nonsense").slug == "shapes"
    with pytest.raises(ValueError, match="already registered"):
        views.register_view("bandit", "again", 1)(lambda ctx: None)
