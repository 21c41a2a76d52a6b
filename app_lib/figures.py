"""Plotly figures for the explorer. Each takes tidy DataFrames and returns a ``go.Figure``.

The colour conventions (one colour per estimator, fixed by its place in the registry, so it keeps
its colour across views) and the seed-band figure are the sandbox's (``sandbox.plots``), shared
with the simulator CLI's figures.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sandbox.plots import as_list as _as_list
from sandbox.plots import axis_names as _axis_names
from sandbox.plots import colour_map, legend_order, with_traces


def advantage_shape_figure(table: pd.DataFrame, marked_p_hat: float | None = None) -> go.Figure:
    """A⁺, A⁻ and Σ|A| vs group accuracy p̂ = c/G, one line per estimator.

    Traces and guide lines are plain dicts (``with_traces``, layout shapes): plotly's per-trace
    validation and its add_hline/add_vline machinery were most of the first page's figure time."""
    panels = [  # short titles: three panels side by side from 900 px up
        ("adv_correct", "A⁺ (correct)"),
        ("adv_incorrect", "A⁻ (incorrect)"),
        ("sum_abs_adv", "Σ|A| (whole group)"),
    ]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in panels], horizontal_spacing=0.09)
    colours = colour_map(table["estimator"])
    traces, shapes = [], []
    for label, part in table.groupby("estimator", sort=False):
        for col, (field, _) in enumerate(panels, start=1):
            xaxis, yaxis = _axis_names(col - 1)
            traces.append(
                dict(
                    type="scatter",
                    x=_as_list(part["p_hat"]),
                    y=_as_list(part[field]),
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    line=dict(color=colours[label]),
                    marker=dict(size=5),
                    hovertemplate=f"{label}<br>p̂=%{{x:.3f}}<br>{field}=%{{y:.4f}}<extra></extra>",
                    xaxis=xaxis,
                    yaxis=yaxis,
                )
            )
    for col, (_, title) in enumerate(panels, start=1):
        xaxis, yaxis = _axis_names(col - 1)
        fig.update_xaxes(title_text="accuracy p̂ = c/G", range=[-0.02, 1.02], row=1, col=col)
        fig.update_yaxes(title_text=title.split(" (")[0], title_standoff=2, row=1, col=col)
        shapes.append(
            dict(
                type="line",
                xref=f"{xaxis} domain",
                x0=0,
                x1=1,
                yref=yaxis,
                y0=0,
                y1=0,
                line=dict(color="grey", width=1, dash="dot"),
            )
        )
        if marked_p_hat is not None:
            shapes.append(
                dict(
                    type="line",
                    xref=xaxis,
                    x0=marked_p_hat,
                    x1=marked_p_hat,
                    yref=f"{yaxis} domain",
                    y0=0,
                    y1=1,
                    line=dict(color="black", width=1, dash="dash"),
                )
            )
    fig.update_layout(
        height=450, margin=dict(l=40, r=20, t=60, b=40), legend=dict(orientation="h", y=-0.22), shapes=shapes
    )
    return with_traces(fig, traces)


def bundle_advantage_figure(curve: pd.DataFrame, marks: pd.DataFrame) -> go.Figure:
    """Population advantage vs bundle score R_B (lines), the score law (bars), q_α/q_β (dashed)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    colours = colour_map(curve["estimator"])
    law = curve.drop_duplicates("score")
    fig.add_trace(
        go.Bar(
            x=law["score"],
            y=law["prob"],
            name="P[R_B = z]",
            marker_color="rgba(150,150,150,0.35)",
            hovertemplate="z=%{x}<br>P=%{y:.4f}<extra></extra>",
        ),
        secondary_y=True,
    )
    for label, part in curve.groupby("estimator", sort=False):
        fig.add_trace(
            go.Scatter(
                x=part["score"],
                y=part["advantage"],
                mode="lines+markers",
                name=label,
                line=dict(color=colours[label], shape="linear"),
                legendgroup=label,
            ),
            secondary_y=False,
        )
    # Quantiles are shared by estimators with equal levels; mark each distinct level once.
    seen: set[tuple[str, float]] = set()
    for _, row in marks.iterrows():
        for level_name, level, q in (("α", row["alpha"], row["q_alpha"]), ("β", row["beta"], row["q_beta"])):
            if math.isnan(q) or (level_name, level) in seen:
                continue
            seen.add((level_name, level))
            fig.add_vline(
                x=q,
                line=dict(color="crimson" if level_name == "α" else "navy", width=1.5, dash="dash"),
                annotation_text=f"q_{level_name}={q:g} ({level_name}={level:g})",
                annotation_position="top left" if level_name == "α" else "top right",
            )
    fig.update_xaxes(title_text="bundle score R_B (correct answers in the bundle)", dtick=1)
    fig.update_yaxes(title_text="population advantage A(z)", secondary_y=False)
    fig.update_yaxes(
        title_text="probability P[R_B = z]",
        secondary_y=True,
        showgrid=False,
        tickmode="auto",
        tickformat=".2f",
        range=[0, float(law["prob"].max()) * 1.15],
    )
    fig.update_layout(
        height=430, margin=dict(l=40, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.22), bargap=0.5
    )
    return fig


def policy_animation_figure(policy: pd.DataFrame, arm_rewards: list[float]) -> go.Figure:
    """π(arm) per estimator, one animation frame per policy snapshot (mean over seeds), rewards dotted."""
    steps = sorted(policy["step"].unique())
    labels = legend_order(policy["estimator"])
    colours = colour_map(labels)
    arms = list(range(len(arm_rewards)))
    as_bars = len(arms) <= 12
    # π as one (step, estimator, arm) array: one pivot instead of a DataFrame filter per frame and estimator.
    table = policy.pivot_table(index=["step", "estimator"], columns="arm", values="prob", sort=True)
    probs = {key: row.tolist() for key, row in zip(table.index, table.to_numpy())}

    def traces_at(step) -> list[dict]:
        out = []
        for label in labels:
            trace = dict(
                x=arms,
                y=probs[(step, label)],
                name=label,
                legendgroup=label,
                marker=dict(color=colours[label]),
                xaxis="x",
                yaxis="y",
            )
            out.append(
                dict(type="bar", **trace)
                if as_bars
                else dict(type="scatter", mode="lines", line=dict(color=colours[label]), **trace)
            )
        # Every frame carries every trace, the static reward curve included (on its own axis): a frame
        # that updates only some traces let plotly.js drop the others while playing.
        out.append(
            dict(
                type="scatter",
                x=arms,
                y=list(arm_rewards),
                name="mean reward μ(arm)",
                mode="lines+markers" if as_bars else "lines",
                line=dict(color="black", dash="dot"),
                xaxis="x",
                yaxis="y2",
            )
        )
        return out

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    frames = [dict(data=traces_at(step), name=str(step), traces=list(range(len(labels) + 1))) for step in steps]
    slider_steps = [
        dict(
            method="animate",
            label=str(step),
            args=[
                [str(step)],
                dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0)),
            ],
        )
        for step in steps
    ]
    fig.update_layout(
        height=460,
        barmode="group",
        margin=dict(l=40, r=20, t=30, b=40),
        legend=dict(orientation="h", y=-0.45),
        updatemenus=[
            dict(
                type="buttons",
                showactive=False,
                x=0.0,
                y=-0.18,
                xanchor="left",
                buttons=[
                    dict(
                        label="▶ play",
                        method="animate",
                        args=[
                            None,
                            dict(frame=dict(duration=120, redraw=True), fromcurrent=True, transition=dict(duration=0)),
                        ],
                    ),
                    dict(
                        label="❚❚ pause",
                        method="animate",
                        args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))],
                    ),
                ],
            )
        ],
        sliders=[
            dict(active=0, currentvalue=dict(prefix="step "), pad=dict(t=40), x=0.15, len=0.85, steps=slider_steps)
        ],
    )
    max_prob = float(policy["prob"].max())
    fig.update_yaxes(title_text="π(arm)", range=[0, min(1.0, max_prob * 1.05 + 1e-3)], secondary_y=False)
    low, high = min(0.0, min(arm_rewards)), max(arm_rewards)
    fig.update_yaxes(
        title_text="mean reward μ(arm)",
        secondary_y=True,
        showgrid=False,
        tickmode="auto",
        range=[low, high + 0.1 * (high - low or 1.0)],
    )
    fig.update_xaxes(title_text="arm", dtick=1 if as_bars else None)
    return with_traces(fig, traces_at(steps[0]), frames)


def standalone_html(fig: go.Figure) -> str:
    """The figure as one HTML file with plotly.js inlined (opens offline; no CDN)."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


def entropy_residual_figure(table: pd.DataFrame, limit: float | None = None) -> go.Figure:
    """Proposition 1 on log-log axes: max |residual|/η² levels off (at ½|H''(0)|, dashed, when ``limit``
    is given) while max |residual/η² − ½H''(0)| falls like η (dotted: a slope-1 reference line).

    residual/η is residual/η² times η, so it is in the table but not drawn (it overlapped the
    second series, both ≈ η).
    """
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=table["eta"],
            y=table["max_abs_residual_over_eta2"].abs(),
            mode="lines+markers",
            name="max |residual| / η²  (bounded: levels off)",
            line=dict(color="navy"),
        )
    )
    if "max_error_vs_half_second_derivative" in table:
        error = table["max_error_vs_half_second_derivative"].abs()
        fig.add_trace(
            go.Scatter(
                x=table["eta"],
                y=error,
                mode="lines+markers",
                name="max |residual/η² − ½H''(0)|  (→ 0 like η)",
                line=dict(color="crimson"),
            )
        )
        # Drawn a third below the error series: on top of it, it would hide (the error is ∝ η).
        fig.add_trace(
            go.Scatter(
                x=table["eta"],
                y=float(error.iloc[0]) / 3 * table["eta"] / float(table["eta"].iloc[0]),
                mode="lines",
                name="reference slope 1 (∝ η)",
                line=dict(color="grey", dash="dot"),
            )
        )
    if limit is not None and math.isfinite(limit):
        fig.add_hline(
            y=limit,
            line=dict(color="navy", dash="dash", width=1),
            annotation_text="max ½|H''(0)| (autograd)",
            annotation_position="bottom right",
        )
    fig.update_xaxes(type="log", title_text="step size η")
    fig.update_yaxes(type="log", title_text="entropy residual (log scale)")
    fig.update_layout(height=400, margin=dict(l=40, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def covariance_gap_figure(table: pd.DataFrame) -> go.Figure:
    """Theorem 2: share of instances with Cov(log π, A_MVaR) <= Cov(log π, A_mean), by Assumption 1 status."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=["share with Cov_MVaR ≤ Cov_mean", "mean covariance gap Cov_MVaR − Cov_mean"]
    )
    colours = {"assumption holds": "seagreen", "assumption violated": "indianred"}
    for status, part in table.groupby("assumption_1", sort=False):
        fig.add_trace(
            go.Bar(
                x=part["instances"],
                y=part["frac_cov_mvar_le_cov_mean"],
                name=status,
                marker_color=colours.get(status),
                legendgroup=status,
                text=[f"n={n}" for n in part["count"]],
                textposition="outside",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=part["instances"],
                y=part["mean_cov_mvar"] - part["mean_cov_mean"],
                name=status,
                marker_color=colours.get(status),
                legendgroup=status,
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    fig.update_yaxes(range=[0, 1.15], row=1, col=1)
    fig.update_xaxes(title_text="random instance family")
    # t=90: the subplot titles sit below the chart toolbar (it covered them at t=40).
    fig.update_layout(
        height=430, barmode="group", margin=dict(l=40, r=20, t=90, b=40), legend=dict(orientation="h", y=-0.25)
    )
    return fig


def optimal_prob_change_figure(curve: pd.DataFrame, thresholds: dict[str, float] | None = None) -> go.Figure:
    """RS-GRPO Lemmas 2–4: Δπ(a*) = dπ(a*)/dη vs β (log x), and β·Δπ(a*) levelling off (Δ ∝ 1/β).

    ``thresholds`` maps a name (β₀, β₁) to a β to mark with a dashed line.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Δπ(a*) of one exact PG step", "β · Δπ(a*)"])
    positive = curve["d_pi_star"] > 0
    fig.add_trace(
        go.Scatter(x=curve["beta"], y=curve["d_pi_star"], mode="lines", name="Δπ(a*)", line=dict(color="navy")),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=curve["beta"][~positive],
            y=curve["d_pi_star"][~positive],
            mode="markers",
            name="Δπ(a*) < 0 (Lemma 2)",
            marker=dict(color="crimson", size=5),
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=curve["beta"],
            y=curve["beta"] * curve["d_pi_star"],
            mode="lines",
            name="β·Δπ(a*)",
            line=dict(color="darkorange"),
        ),
        row=1,
        col=2,
    )
    fig.add_hline(y=0, line=dict(color="grey", width=1, dash="dot"), row=1, col=1)
    for name, beta in (thresholds or {}).items():
        if math.isfinite(beta) and beta > 0:
            fig.add_vline(x=beta, line=dict(dash="dash", color="grey"), row=1, col=1)
            # Annotations on a log axis take log10 coordinates (shapes take data values).
            fig.add_annotation(
                x=math.log10(beta),
                y=0.97,
                xref="x",
                yref="y domain",
                text=f"{name}={beta:.3g}",
                showarrow=False,
                xanchor="left",
                xshift=3,
                yanchor="top",
                font=dict(size=11),
            )
    log_range = [math.log10(float(curve["beta"].min())), math.log10(float(curve["beta"].max()))]
    fig.update_xaxes(type="log", title_text="risk-seeking β", range=log_range)
    fig.update_layout(height=420, margin=dict(l=40, r=20, t=60, b=40), legend=dict(orientation="h", y=-0.25))
    return fig
