"""Regime map: where each dynamic claim holds, fails or is not resolved, one axis at a time.

Reads the precomputed map (``python -m sandbox.regime_map --out app_lib/data/regime_map``): per point
(centre, axis, value) and comparison, the paired difference across seeds at equal steps, its 95 % t
interval and the verdict of ``sandbox.verdicts``. Nothing is simulated here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_lib import state
from app_lib.ui import IMAGE_EXPORT, downloads, explain
from app_lib.views import Context, register_view

DATA = Path(__file__).resolve().parents[1] / "data" / "regime_map"
#: verdict -> (code on the heatmap's z, colour)
VERDICT_COLOURS = {"fails": (0, "#d62728"), "not resolved": (1, "#c7c7c7"), "holds": (2, "#2ca02c")}
QUANTITY_WORDS = {"entropy": "final entropy", "pass_at_k": "pass@32", "pass_at_1": "pass@1"}
CENTRE_WORDS = {
    "entropy": "entropy regime: TabularConfig() (uniform prompts, peak 3, ρ = 0.3)",
    "passk": "pass@k regime: peak 5, ρ = 0, hard prompts (the passk_large_k claim)",
}


@st.cache_data(show_spinner=False)
def load_map(path: str = str(DATA / "regime_map.json")) -> dict:
    return json.loads(Path(path).read_text())


def point_label(axis: str, value) -> str:
    return "centre (defaults)" if axis == "centre" else f"{axis} = {value}"


def map_frame(data: dict, claim: str, centre: str) -> pd.DataFrame:
    """The rows of one claim at one centre, labelled for the heatmap, in the map's axis order."""
    rows = pd.DataFrame(data["rows"])
    rows = rows[(rows["claim"] == claim) & (rows["centre"] == centre)].copy()
    if rows.empty:
        return rows
    axes = ["centre", *data["settings"]["axes"]]
    order = {a: i for i, a in enumerate(axes)}
    values = {a: [str(v) for v in vs] for a, vs in data["settings"]["axes"].items()}
    rows["value"] = rows["value"].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    rows["point"] = [point_label(a, v) for a, v in zip(rows["axis"], rows["value"])]
    rows["comparison"] = [
        f"{m} − {b}: {QUANTITY_WORDS.get(q, q)}" for m, b, q in zip(rows["method"], rows["baseline"], rows["quantity"])
    ]
    rows["_axis"] = rows["axis"].map(order)
    rows["_value"] = [
        values.get(a, []).index(v) if v in values.get(a, []) else -1 for a, v in zip(rows.axis, rows.value)
    ]
    return rows.sort_values(["_axis", "_value"]).drop(columns=["_axis", "_value"])


def regime_heatmap(frame: pd.DataFrame, title: str) -> go.Figure:
    """Verdict colour per (point, comparison), the difference written in the cell, interval + seeds on hover."""
    points = list(dict.fromkeys(frame["point"]))
    comps = list(dict.fromkeys(frame["comparison"]))
    cell = frame.set_index(["point", "comparison"])
    z, text, hover = [], [], []
    for p in points:
        zr, tr, hr = [], [], []
        for c in comps:
            if (p, c) not in cell.index:
                zr.append(None), tr.append(""), hr.append("not measured at this point")
                continue
            r = cell.loc[(p, c)]
            zr.append(VERDICT_COLOURS[r["verdict"]][0])
            tr.append(f"{r['difference']:+.3f}")
            hr.append(
                f"{p} · {c}<br>difference {r['difference']:+.4f}, 95% CI [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
                f"<br>{r['verdict']} · claimed side in {int(r['wins'])}/{int(r['seeds'])} seeds · step {int(r['step'])}"
                f"<br>base accuracy (step-0 pass@1) {r['base_accuracy']:.3f}"
            )
        z.append(zr), text.append(tr), hover.append(hr)
    colours = [VERDICT_COLOURS[v][1] for v in ("fails", "not resolved", "holds")]
    scale = [[0.0, colours[0]], [0.33, colours[0]], [0.34, colours[1]], [0.66, colours[1]], [0.67, colours[2]]]
    scale.append([1.0, colours[2]])
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=comps,
            y=points,
            text=text,
            texttemplate="%{text}",
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            colorscale=scale,
            zmin=0,
            zmax=2,
            colorbar={"tickvals": [0, 1, 2], "ticktext": ["fails", "not resolved", "holds"], "title": "verdict"},
            xgap=2,
            ygap=2,
        )
    )
    fig.update_layout(
        title=title,
        height=max(320, 26 * len(points) + 140),
        yaxis={"autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
    )
    return fig


@register_view("regime_map", "8 · Regime map", order=80, needs_estimators=False)
def render(ctx: Context) -> None:
    st.header("Regime map: where each claim holds")
    try:
        data = load_map()
    except FileNotFoundError:
        st.warning(f"No precomputed map at {DATA}: run `python -m sandbox.regime_map --out {DATA}`.")
        return
    settings = data["settings"]
    st.caption(
        f"Tabular simulator, {settings['seeds']} training seeds per point, equal steps ({settings['steps']} unless the "
        f"axis is `steps`), one axis moved at a time around each centre. Cell colour: the verdict of the rule "
        f"(95 % t interval across seeds wholly above 0 → holds, wholly below → fails, else not resolved); cell text: "
        f"the mean paired difference; hover: interval, seeds, base accuracy. CPU time of the whole map: "
        f"{data['cpu_seconds']:.0f} s."
    )
    claims = settings["claims"]
    c1, c2 = st.columns(2)
    claim = state.radio(c1, "claim", list(claims), key="map_claim", format_func=lambda c: claims[c][:60] + "…")
    centre = state.radio(c2, "centre", list(settings["centres"]), key="map_centre", format_func=CENTRE_WORDS.get)
    frame = map_frame(data, claim, centre)
    st.markdown(f"**{claims[claim]}**")
    if frame.empty:
        st.info("This claim has no comparison at this centre.")
        return
    fig = regime_heatmap(frame, f"{claim} · centre: {centre}")
    st.plotly_chart(fig, key="fig_regime_map", config=IMAGE_EXPORT)
    counts = frame["verdict"].value_counts()
    m1, m2, m3 = st.columns(3)
    m1.metric("holds", int(counts.get("holds", 0)))
    m2.metric("fails", int(counts.get("fails", 0)))
    m3.metric("not resolved", int(counts.get("not resolved", 0)))
    shown = frame[
        ["point", "comparison", "step", "difference", "ci_low", "ci_high", "verdict", "wins", "seeds", "base_accuracy"]
    ]
    st.dataframe(shown, hide_index=True, key="table_regime_map")
    explain(
        claims[claim],
        f"{CENTRE_WORDS[centre]}; RiskPO α, β, ω, B = {settings['riskpo']}; RS-GRPO β = {settings['rs_beta']}; "
        f"{settings['interval']}.",
        "Headline over the whole map: " + data["headline"]["text"],
    )
    if claim == "centring_ablation":
        st.markdown(
            "**Variance the constant offset adds.** The camera-ready advantage is ≤ 0 everywhere; centring it per "
            "batch removes that offset. Total variance of the sampled policy gradient at the initial policy "
            "(batch quantiles), raw vs centred:"
        )
        st.dataframe(pd.DataFrame(data["centring_variance"]), hide_index=True, key="table_centring_variance")
    downloads(f"regime_map_{claim}_{centre}", shown, fig, provenance={"command": data.get("command", "")})


# --------------------------------------------------------------------------- measured verdicts for other views


def centre_comparisons(claim: str, centre: str, data: dict | None = None, axis: str = "centre") -> list[dict]:
    """The map's rows of ``claim`` at ``centre`` (the centre point itself, or every point of ``axis``)."""
    if data is None:
        try:
            data = load_map()
        except FileNotFoundError:
            return []
    return [r for r in data["rows"] if r["claim"] == claim and r["centre"] == centre and r["axis"] == axis]


def comparison_words(row: dict) -> str:
    """'riskpo − dr_grpo, final entropy: −0.059 [−0.081, −0.037], 0/8 seeds → fails'"""
    where = "" if row["axis"] == "centre" else f" at {row['axis']} = {row['value']}"
    return (
        f"{row['method']} − {row['baseline']}, {QUANTITY_WORDS.get(row['quantity'], row['quantity'])}{where}: "
        f"{row['difference']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}], claimed side in "
        f"{int(row['wins'])}/{int(row['seeds'])} seeds → {row['verdict']}"
    )


def verdict_note(paper: str, rows: list[dict], where: str) -> str | None:
    """Show the paper's sentence next to the measured verdict (the claims' rule over ``rows``), and say in plain
    words when the measurement contradicts the paper. Returns the verdict (None when nothing was measured)."""
    if not rows:
        st.caption(f"No measured verdict: the regime map ({DATA}) is missing.")
        return None
    verdicts = [r["verdict"] for r in rows]
    verdict = "fails" if "fails" in verdicts else "holds" if all(v == "holds" for v in verdicts) else "not resolved"
    lines = "  \n".join(f"· {comparison_words(r)}" for r in rows)
    text = f"**The paper says:** {paper}  \n**Measured** ({where}, equal steps, 95 % t intervals):  \n{lines}  \n"
    if verdict == "fails":
        failed = [f"{r['method']} vs {r['baseline']}" for r in rows if r["verdict"] == "fails"]
        st.warning(  # a warning, not st.error: a measured contradiction is a result, not an input error
            text + f"**Verdict: fails. This contradicts the paper** — in this simulator the difference is on the "
            f"opposite side for {', '.join(failed)}.",
            icon=":material/report:",
        )
    elif verdict == "holds":
        st.success(text + "**Verdict: holds** — every comparison's interval lies on the paper's side.")
    else:
        st.info(
            text + "**Verdict: not resolved** — an interval contains 0: at this size the simulator neither confirms "
            "nor contradicts the paper."
        )
    return verdict
