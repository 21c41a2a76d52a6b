"""Figures of the papers' results: pass@k vs k, parameter sweeps, and the presets' curves with
the papers' reported values overlaid. Tidy DataFrames in, ``go.Figure`` out."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from sandbox.plots import beta_colour, colour_map, hex_to_rgba, legend_order

SWEEP_SCALE = "Viridis"


def passk_figure(table: pd.DataFrame) -> go.Figure:
    """pass@k vs k (log₂ axis), end of training (left) and at matched pass@1 (right), one line per estimator."""
    panels = ["end of training", "matched pass@1"]
    target = table.loc[table["when"] == "matched pass@1", "pass_at_1"]
    titles = [
        "at the end of training",
        f"at matched pass@1 = {float(target.iloc[0]):.3f}" if len(target) else "at matched pass@1",
    ]
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, shared_yaxes=True, horizontal_spacing=0.05)
    colours = colour_map(table["estimator"])
    for col, when in enumerate(panels, start=1):
        part = table[table["when"] == when]
        for label in legend_order(part["estimator"]):
            line = part[part["estimator"] == label].sort_values("k")
            fig.add_trace(
                go.Scatter(
                    x=line["k"],
                    y=line["pass_at_k"],
                    # seed band (± one std over seeds) where the table carries it (the end-of-training rows)
                    error_y=dict(type="data", array=line["pass_at_k_std"].fillna(0.0))
                    if "pass_at_k_std" in line
                    else None,
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    line=dict(color=colours[label]),
                    hovertemplate=f"{label}<br>k=%{{x}}<br>pass@k=%{{y:.4f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        ks = sorted(table["k"].unique())
        fig.update_xaxes(
            type="log", title_text="k (log scale)", tickvals=ks, ticktext=[str(k) for k in ks], row=1, col=col
        )
    fig.update_yaxes(title_text="pass@k", row=1, col=1)
    fig.update_layout(height=420, margin=dict(l=40, r=20, t=70, b=40), legend=dict(orientation="h", y=-0.22))
    return fig


def sequential_colours(values) -> dict:
    """Sweep values → colours of a sequential scale (ordered values, ordered colours)."""
    values = sorted(set(values))
    if len(values) == 1:
        return {values[0]: sample_colorscale(SWEEP_SCALE, [0.4])[0]}
    return dict(zip(values, sample_colorscale(SWEEP_SCALE, [0.9 * i / (len(values) - 1) for i in range(len(values))])))


DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "triangle-down")


def log_ticks(values) -> dict:
    """Tick values and labels of a log axis at exactly ``values`` (Plotly's own minor ticks label
    0.5 as "5" and 0.2 as "2")."""
    values = sorted({float(v) for v in values})
    return {"tickvals": values, "ticktext": [f"{v:g}" for v in values]}


def sweep_figure(
    final: pd.DataFrame,
    parameter: str,
    metric: str,
    metric_title: str,
    curves: pd.DataFrame | None = None,
    log_x: bool = False,
    beta_values: bool = False,
) -> go.Figure:
    """Left: the final metric (mean ± std over seeds) against the swept parameter, one line per
    estimator (its colour in every view). Right (when ``curves`` is given): the metric over
    training, one line per (estimator, value). With several estimators the colour says the
    estimator and the dash and marker say the value; with one estimator the colour follows the
    value (RS-GRPO's β: ``beta_colour``, as in every view; others a sequential scale)."""
    cols = 2 if curves is not None else 1
    fig = make_subplots(
        rows=1,
        cols=cols,
        subplot_titles=[f"final {metric_title} vs {parameter}", f"{metric_title} over training"][:cols],
        horizontal_spacing=0.08,
    )
    colours = colour_map(final["estimator"])
    for label in legend_order(final["estimator"]):
        part = final[final["estimator"] == label].sort_values("value")
        fig.add_trace(
            go.Scatter(
                x=part["value"],
                y=part["mean"],
                error_y=dict(type="data", array=part["std"], visible=True),
                mode="lines+markers",
                name=label,
                legendgroup=label,
                line=dict(color=colours[label]),
            ),
            row=1,
            col=1,
        )
    fig.update_xaxes(
        title_text=parameter + (" (log scale)" if log_x else ""),
        type="log" if log_x else "linear",
        **(log_ticks(final["value"]) if log_x else {}),
        row=1,
        col=1,
    )
    fig.update_yaxes(title_text=metric_title, row=1, col=1)
    if curves is not None:
        estimators = list(dict.fromkeys(curves["estimator"]))
        values = sorted(set(curves["value"]))
        by_value = len(estimators) == 1
        scale = {v: beta_colour(v) for v in values} if beta_values else sequential_colours(values)
        curve_colours = colour_map(estimators)
        for (label, value), part in curves.groupby(["estimator", "value"], sort=True):
            index = values.index(value)
            style = dict(color=scale[value]) if by_value else dict(color=curve_colours[label], dash=DASHES[index % 6])
            fig.add_trace(
                go.Scatter(
                    x=part["step"],
                    y=part["mean"],
                    mode="lines+markers",
                    # a few markers per line (the value is readable without colour, in grey print too)
                    marker=dict(symbol=SYMBOLS[index % len(SYMBOLS)], size=7, maxdisplayed=10),
                    name=f"{parameter}={value:g}" if by_value else f"{label}, {parameter}={value:g}",
                    legendgroup=f"v{value}" if by_value else f"{label}|{value}",
                    line=style,
                    hovertemplate=f"{label}, {parameter}={value:g}<br>step %{{x}}<br>%{{y:.4f}}<extra></extra>",
                ),
                row=1,
                col=2,
            )
        fig.update_xaxes(title_text="step", row=1, col=2)
        fig.update_yaxes(title_text=metric_title, row=1, col=2)
    fig.update_layout(height=460, margin=dict(l=40, r=20, t=70, b=40), legend=dict(orientation="h", y=-0.22))
    return fig


def _band(
    fig, x, mean, std, colour, name, row=1, col=1, lo=None, hi=None, legendgroup=None, showlegend=True, dash=None
):
    group = legendgroup or name
    fig.add_trace(
        go.Scatter(
            x=pd.concat([x, x[::-1]]),
            y=pd.concat([(mean + std).clip(upper=hi), (mean - std).clip(lower=lo)[::-1]]),
            fill="toself",
            mode="lines",  # no markers: the band's vertices drew stray dots in the default colours
            fillcolor=hex_to_rgba(colour, 0.15),
            line=dict(width=0),
            hoverinfo="skip",
            showlegend=False,
            legendgroup=group,
        ),
        row=row,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=mean,
            mode="lines",
            name=name,
            legendgroup=group,
            showlegend=showlegend,
            line=dict(color=colour, dash=dash),
        ),
        row=row,
        col=col,
    )


def rs_bandit_figure(curves: pd.DataFrame, policy: pd.DataFrame, rewards: list[float]) -> go.Figure:
    """RS-GRPO Fig. 3: E_π[r] vs updates for each β (sequential colours), with the paper's two plateaus
    (0.6: the local mode, 1.0: the optimum) dashed; right: the final policy of each β over the arms."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=["expected reward E_π[r] (mean ± std over seeds)", "final policy π(arm)"],
        column_widths=[0.6, 0.4],
        specs=[[{}, {"secondary_y": True}]],
        horizontal_spacing=0.08,
    )
    last = policy["step"].max()
    for beta, part in curves.groupby("beta", sort=True):
        colour = beta_colour(beta)
        _band(
            fig,
            part["step"],
            part["expected_reward_mean"],
            part["expected_reward_std"],
            colour,
            f"β={beta:g}",
            lo=0.0,
            hi=1.0,
            legendgroup=f"b{beta}",
        )
        final = policy[(policy["beta"] == beta) & (policy["step"] == last)].sort_values("arm")
        fig.add_trace(
            go.Scatter(
                x=final["arm"],
                y=final["prob"],
                mode="lines",
                line=dict(color=colour),
                name=f"β={beta:g}",
                legendgroup=f"b{beta}",
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    for level, text in ((1.0, "paper: β ≥ 4 reach the optimum 1.0"), (0.6, "paper: β ∈ {0, 2} stay at the 0.6 mode")):
        fig.add_hline(y=level, line=dict(color="grey", dash="dash", width=1), row=1, col=1)
        fig.add_annotation(
            x=0.01,
            y=level,
            xref="x domain",
            yref="y",
            text=text,
            showarrow=False,
            yshift=9,
            xanchor="left",
            font=dict(size=11, color="dimgrey"),
            bgcolor="rgba(255,255,255,0.85)",
        )
    fig.add_trace(
        go.Scatter(
            x=list(range(len(rewards))),
            y=rewards,
            mode="lines",
            line=dict(color="black", dash="dot"),
            name="reward r(arm)",
        ),
        row=1,
        col=2,
        secondary_y=True,
    )
    fig.update_xaxes(title_text="update", row=1, col=1)
    fig.update_xaxes(title_text="arm", row=1, col=2)
    fig.update_yaxes(range=[0.3, 1.05], row=1, col=1)
    fig.update_yaxes(
        title_text="r(arm)",
        secondary_y=True,
        showgrid=False,
        row=1,
        col=2,
        range=[0, 1.1],
        tickmode="linear",
        dtick=0.2,
    )
    fig.update_yaxes(title_text="π(arm)", secondary_y=False, row=1, col=2)
    fig.update_layout(height=450, margin=dict(l=40, r=20, t=70, b=40), legend=dict(orientation="h", y=-0.2))
    return fig


def stats_band_figure(
    curves: pd.DataFrame, fields: list[tuple[str, str]], bounds: dict | None = None, cols: int = 3
) -> go.Figure:
    """Precomputed seed statistics (<field>_mean, <field>_std per estimator and step) as banded lines."""
    bounds = bounds or {}
    rows = math.ceil(len(fields) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[t for _, t in fields],
        horizontal_spacing=0.07,
        vertical_spacing=0.14 if rows > 1 else 0.0,
    )
    colours = colour_map(curves["estimator"])
    for i, (field, _) in enumerate(fields):
        r, c = divmod(i, cols)
        lo, hi = bounds.get(field, (None, None))
        for label in legend_order(curves["estimator"]):
            part = curves[curves["estimator"] == label]
            _band(
                fig,
                part["step"],
                part[f"{field}_mean"],
                part[f"{field}_std"],
                colours[label],
                label,
                r + 1,
                c + 1,
                lo,
                hi,
                showlegend=i == 0,
            )
        fig.update_xaxes(title_text="step", row=r + 1, col=c + 1)
    fig.update_layout(
        height=330 * rows + 60,
        margin=dict(l=40, r=20, t=70, b=60),
        legend=dict(orientation="h", y=-0.3 / rows, yanchor="top"),
    )
    return fig


def bundle_sweep_figure(final: pd.DataFrame, paper: pd.DataFrame) -> go.Figure:
    """RiskPO Table 4 next to the sandbox: zero-advantage share and pass@k vs B (left, sandbox),
    the paper's accuracy vs B (right, LLM: MATH and GSM8K)."""
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=[
            "zero-advantage share, run mean (sandbox)",
            "final pass@8 (sandbox)",
            "paper Table 4: accuracy (%) vs B",
        ],
        horizontal_spacing=0.08,
    )
    scale = sequential_colours(final["bundle_size"])
    for col, field in ((1, "run_mean_frac_zero_adv_groups"), (2, "final_pass_at_k")):
        fig.add_trace(
            go.Scatter(
                x=final["bundle_size"],
                y=final[f"{field}_mean"],
                error_y=dict(type="data", array=final[f"{field}_std"]),
                mode="lines+markers",
                marker=dict(color=[scale[b] for b in final["bundle_size"]], size=9),
                line=dict(color="grey"),
                name=field,
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    for column, dash in (("MATH", "solid"), ("GSM8K", "dash"), ("Avg.", "dot")):
        fig.add_trace(
            go.Scatter(
                x=paper["bundle_size"],
                y=paper[column],
                mode="lines+markers",
                name=f"paper {column}",
                line=dict(color="black", dash=dash),
            ),
            row=1,
            col=3,
        )
    for col in (1, 2, 3):
        fig.update_xaxes(title_text="bundle size B", dtick=1, row=1, col=col)
    fig.update_layout(height=420, margin=dict(l=40, r=20, t=70, b=40), legend=dict(orientation="h", y=-0.22))
    return fig


def thm2_scatter_figure(points: pd.DataFrame) -> go.Figure:
    """Theorem 2 per instance: Cov_MVaR against Cov_mean, coloured by Assumption 1; below the diagonal = ordered."""
    fig = make_subplots(
        rows=1, cols=points["instances"].nunique(), subplot_titles=[f"family {f}" for f in points["instances"].unique()]
    )
    for col, (_, part) in enumerate(points.groupby("instances", sort=False), start=1):
        for holds, colour, name in (
            (True, "seagreen", "Assumption 1 holds"),
            (False, "indianred", "Assumption 1 violated"),
        ):
            sub = part[part["assumption_1"] == holds]
            fig.add_trace(
                go.Scatter(
                    x=sub["cov_mean"],
                    y=sub["cov_mvar"],
                    mode="markers",
                    marker=dict(color=colour, size=5, opacity=0.6),
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        low, high = float(part[["cov_mean", "cov_mvar"]].min().min()), float(part[["cov_mean", "cov_mvar"]].max().max())
        fig.add_trace(
            go.Scatter(
                x=[low, high],
                y=[low, high],
                mode="lines",
                line=dict(color="grey", dash="dot"),
                name="Cov_MVaR = Cov_mean",
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="Cov(log π, A_mean)", row=1, col=col)
    fig.update_yaxes(title_text="Cov(log π, A_MVaR)", row=1, col=1)
    fig.update_layout(height=400, margin=dict(l=40, r=20, t=90, b=40), legend=dict(orientation="h", y=-0.25))
    return fig
