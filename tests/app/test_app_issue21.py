"""Regression tests of issue 21's explorer bugs 5–9 (bugs 1–4 are in test_app_url_walk.py).

Each test drives app.py headlessly (AppTest) or builds the figure the view draws, and checks
the property the bug broke: what is drawn, what the text renders to, what a script can parse.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")
TIMEOUT = 180


def run(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figure(at: AppTest, key: str) -> dict:
    def decode(node):
        if isinstance(node, dict):
            if "bdata" in node and "dtype" in node:
                return np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"])).tolist()
            return {k: decode(v) for k, v in node.items()}
        return [decode(v) for v in node] if isinstance(node, list) else node

    (match,) = [e for e in at.get("plotly_chart") if e.proto.id.endswith(f"-{key}")]
    return decode(json.loads(match.proto.spec))


def page_text(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "markdown", "caption") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


# --------------------------------------------------------------------------- bug 5: compare view


def test_compare_view_bands_draw_no_markers_and_two_folders_fit():
    from app_lib.compare_panels import discover_folders

    folders = discover_folders()
    if len(folders) < 2:
        pytest.skip("needs two result folders under docs/compare/")
    at = run({"view": "compare", "compare_folders": ",".join(folders[:2])})
    for key in ("compare_curves", "compare_passk"):
        fig = figure(at, key)
        bands = [t for t in fig["data"] if t.get("fill") == "toself"]
        # The band polygons had no mode: Plotly drew markers at their vertices (the stray dots).
        assert all(t.get("mode") == "lines" for t in bands), [t.get("mode") for t in bands]
        assert fig["layout"]["legend"]["orientation"] == "h"  # wraps under the plot instead of being cut off
        assert fig["layout"]["legend"]["y"] < 0
        titles = [a["text"] for a in fig["layout"]["annotations"]]
        columns = max(int(k[5:] or 1) for k in fig["layout"] if k.startswith("xaxis"))
        if key == "compare_curves":
            # Four panels side by side at 900 px: ≈ 200 px each, ≈ 8 px per character of a title.
            assert max(len(t) for t in titles) <= 24, titles
        assert columns >= 2
    if len(bands) == 0:
        pytest.fail("the pass@k figure drew no band")


def test_every_band_figure_draws_its_bands_without_markers():
    from sandbox.plots import band_figure

    metrics = pd.DataFrame(
        {"estimator": ["grpo"] * 4, "seed": [0, 0, 1, 1], "step": [0, 1, 0, 1], "entropy": [1.0, 0.8, 1.1, 0.7]}
    )
    fig = band_figure(metrics, [("entropy", "entropy")]).to_plotly_json()
    bands = [t for t in fig["data"] if t.get("fill") == "toself"]
    assert bands and all(t["mode"] == "lines" for t in bands)


# --------------------------------------------------------------------------- bug 6: sweeps, two estimators


def sweep_frames(estimators, values):
    final = pd.DataFrame(
        [{"estimator": e, "mean": i + v, "std": 0.1, "value": v} for i, e in enumerate(estimators) for v in values]
    )
    curve = pd.DataFrame(
        [
            {"estimator": e, "step": s, "mean": i + v + s, "value": v}
            for i, e in enumerate(estimators)
            for v in values
            for s in range(5)
        ]
    )
    return final, curve


def test_sweep_curves_tell_two_estimators_and_their_values_apart():
    from app_lib.figures_paper import sweep_figure
    from sandbox.plots import colour_map

    final, curve = sweep_frames(["riskpo", "riskpo_seeking"], [0.1, 0.2, 0.3])
    fig = sweep_figure(final, "α", "entropy", "entropy", curve).to_plotly_json()
    right = [t for t in fig["data"] if t["xaxis"] == "x2"]
    assert len(right) == 6
    styles = {(t["line"]["color"], t["line"].get("dash"), t["marker"]["symbol"]) for t in right}
    assert len(styles) == 6  # every (estimator, value) line looks different
    colours = colour_map(["riskpo", "riskpo_seeking"])
    for t in right:
        estimator = t["name"].split(",")[0]
        assert t["line"]["color"] == colours[estimator]  # colour = estimator, as in the left panel
    for value in (0.1, 0.2, 0.3):  # the same dash and marker for one value across estimators
        same = {(t["line"]["dash"], t["marker"]["symbol"]) for t in right if t["name"].endswith(f"={value:g}")}
        assert len(same) == 1


def test_rs_grpo_beta_sweep_uses_the_beta_colours_and_labels_its_log_axis():
    from app_lib.figures_paper import sweep_figure
    from sandbox.plots import beta_colour

    values = [0.25, 0.5, 1.0, 2.0, 4.0]
    final, curve = sweep_frames(["rs_grpo"], values)
    fig = sweep_figure(final, "RS-GRPO β", "entropy", "entropy", curve, log_x=True, beta_values=True)
    data = fig.to_plotly_json()
    right = [t for t in data["data"] if t["xaxis"] == "x2"]
    assert [t["line"]["color"] for t in right] == [beta_colour(v) for v in values]
    axis = data["layout"]["xaxis"]
    assert axis["type"] == "log"
    # β = 0.5 was labelled "5" by Plotly's minor log ticks.
    assert list(axis["tickvals"]) == values and list(axis["ticktext"]) == ["0.25", "0.5", "1", "2", "4"]


def test_sweeps_view_draws_two_estimators_in_their_own_colours():
    at = run(
        {
            "view": "sweeps",
            "estimators": "riskpo,riskpo_seeking",
            "sweep_param": "α (lower quantile level)",
            "sweep_values_alpha": "0.1,0.3",
            "sweep_steps": "10",
            "sweep_seeds": "1",
        }
    )
    fig = figure(at, "fig_sweep")
    right = [t for t in fig["data"] if t.get("xaxis") == "x2"]
    assert len(right) == 4
    assert len({t["line"]["color"] for t in right}) == 2 and len({t["line"]["dash"] for t in right}) == 2


# --------------------------------------------------------------------------- bug 7: Markdown ate π'_β


def test_theorem_texts_keep_their_subscripts():
    markdown_it = pytest.importorskip("markdown_it")
    at = run({"view": "theorems", "thm2_instances": "100", "lemma_instances": "20"})
    md = markdown_it.MarkdownIt()
    boxes = [e.value for kind in ("info", "success", "warning") for e in getattr(at, kind)]
    assert len(boxes) >= 4
    rendered = [md.render(text) for text in boxes]
    for text, html in zip(boxes, rendered):
        assert "<em>" not in html, text  # underscores and lone * were read as italics
    joined = " ".join(rendered)
    assert "π'_β" in joined or "J_β" in joined  # the subscripts are drawn as written


def test_plain_escapes_formula_markup_but_keeps_bold_and_code():
    markdown_it = pytest.importorskip("markdown_it")
    from app_lib.ui import plain

    text = "π'_β(a*) > π'_{β'}(a*) costs $5, **bold** and `q_alpha`"
    html = markdown_it.MarkdownIt().render(plain(text))
    assert "<em>" not in html and "<strong>bold</strong>" in html and "<code>q_alpha</code>" in html
    assert "π'_β(a*) &gt; π'_{β'}(a*) costs $5" in html


# --------------------------------------------------------------------------- bug 8: HTML export's JSON


def test_html_export_settings_block_is_json():
    import plotly.graph_objects as go

    from app_lib import ui

    header = ui.settings_header({"view": "shapes", "alpha": 0.3, "estimators": ["grpo", "rs_grpo"]})
    header["provenance"] = {"note": "a </script> & <b>tag</b>"}
    page = ui.html_with_settings(go.Figure(), header).decode()
    # An independent reading: the element's text, as a browser's textContent gives it.
    (body,) = re.findall(r'<script type="application/json" id="riskrl-settings">(.*?)</script>', page, re.S)
    assert json.loads(body) == header  # was HTML-escaped (&quot;...), not JSON
    assert ui.read_html_settings(page) == header
    assert "&amp;" in page.split('id="riskrl-settings"')[0]  # the <pre> for people stays escaped


# --------------------------------------------------------------------------- bug 9: words and α > β


def test_alpha_above_beta_keeps_the_tabular_view_and_names_the_controls():
    at = run(
        {
            "view": "tabular",
            "estimators": "grpo,riskpo",
            "alpha": "0.9",
            "beta": "0.8",
            "tab_steps": "10",
            "tab_seeds": "1",
            "tab_prompts": "10",
        }
    )
    table = at.dataframe[0].value
    assert list(table["estimator"]) == ["grpo"]  # GRPO still runs; riskpo cannot (α ≥ β)
    for column in ("mvar", "cvar", "rvar_lower"):
        assert column not in table  # drawn at levels the sidebar does not have: left out, and said so
    text = page_text(at)
    assert "Risk panels" in text and "α = 0.9, β = 0.8" in text
    assert not re.search(r"risk_alpha|risk_beta|batch_size", text), text


def test_bandit_errors_name_the_controls():
    at = run(
        {
            "view": "bandit",
            "estimators": "grpo",
            "bandit_update": "sampled",
            "bandit_optimizer": "natural",
            "bandit_steps": "20",
        }
    )
    text = page_text(at)
    assert "Invalid bandit settings" in text and "update = exact" in text
    assert "batch_size" not in text, text


def test_user_words_maps_every_argument_name_it_knows():
    from app_lib.ui import USER_NAMES, user_words

    for name, words in USER_NAMES.items():
        assert user_words(f"{name} must be valid") == f"{words} must be valid"
    assert user_words("risk_alpha=0.9 and risk_beta=0.8") == "α (sidebar)=0.9 and β (sidebar)=0.8"


# --------------------------------------------------------------------------- item 3: orientation


def test_first_load_offers_three_things_to_try_and_closes_once_one_is_chosen():
    at = run({"view": "shapes", "estimators": "grpo"})
    buttons = {b.key: b for b in at.button if str(b.key).startswith("intro_")}
    assert set(buttons) == {"intro_presets", "intro_bandit", "intro_tabular"}
    buttons["intro_presets"].click().run()
    assert not at.exception
    assert at.radio(key="view").value == "presets" and at.header[0].value.startswith("Paper presets")
    assert not [b for b in at.button if str(b.key).startswith("intro_")]  # closed for the rest of the session


@pytest.mark.parametrize(
    "view, used, unused",
    [
        ("shapes", {"alpha", "bundle_size", "group_size", "estimators"}, set()),
        ("bandit", {"alpha", "k", "rs_beta", "estimators"}, {"bundle_size", "group_size"}),
        ("theorems", {"alpha", "beta", "omega"}, {"k", "group_size", "rs_beta", "estimators"}),
        ("presets", set(), {"alpha", "beta", "omega", "bundle_size", "k", "rs_beta", "group_size", "estimators"}),
    ],
)
def test_sidebar_disables_the_controls_a_view_does_not_read(view, used, unused):
    from app_lib.views import VIEWS, load_views

    load_views()
    query = {"view": view, "estimators": "grpo", "bandit_steps": "20", "thm2_instances": "100", "lemma_instances": "20"}
    at = run(query)

    def disabled(key):
        widget = next(
            w for kind in ("slider", "select_slider", "multiselect") for w in getattr(at, kind) if w.key == key
        )
        return widget.disabled

    for key in used:
        assert not disabled(key), key
    for key in unused:
        assert disabled(key), key
    declared = VIEWS[view].sidebar
    assert declared is None or used <= set(declared)
