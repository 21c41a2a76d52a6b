"""Plotly figures of sandbox results (HTML always; PNG only where kaleido is installed), and the
plotting conventions the explorer shares with them: one colour per estimator (``colour_map``),
RS-GRPO's β on a sequential scale, and the seed-mean ± std band figure (``band_figure``). They
live here, below the explorer, so the CLI's HTML and the app draw the same picture and the
simulators never import the app. plotly is imported inside each function: ``import sandbox``
works without the ``app`` extra."""

from __future__ import annotations

import math
import re

import pandas as pd

__all__ = [
    "colour_map",
    "legend_order",
    "beta_of",
    "beta_colour",
    "hex_to_rgba",
    "with_traces",
    "band_figure",
    "curves_figure",
    "table_figure",
    "claim_figure",
    "bandit_figure",
    "tabular_figure",
    "prop1_figure",
    "thm1_figure",
    "thm2_figure",
    "thm3_figure",
    "lemma_figure",
]


#: RS-GRPO β values are ordered: they get a sequential scale (light/low β → dark/high β), fixed
#: on a log axis over this range so one β keeps its colour whatever else is selected.
BETA_SCALE = "Plasma"
BETA_RANGE = (0.25, 64.0)


def beta_of(label: str) -> float | None:
    """The β in an 'rs_grpo (β=2)' label, else None."""
    match = re.search(r"β=([0-9.eE+-]+)", str(label))
    return float(match.group(1)) if match and str(label).startswith("rs_grpo") else None


def beta_colour(beta: float) -> str:
    """Sequential colour of a temperature β (β = 0, the mean objective, takes the light end)."""
    lo, hi = (math.log(b) for b in BETA_RANGE)
    position = 0.0 if beta <= 0 else min(max((math.log(beta) - lo) / (hi - lo), 0.0), 1.0)
    # Plasma's last 20% is pale yellow, unreadable on white: stop at 0.8 (and run dark → light reversed).
    from plotly.colors import sample_colorscale

    return sample_colorscale(BETA_SCALE, [0.8 * (1.0 - position)])[0]


def colour_map(labels) -> dict[str, str]:
    """One colour per label, fixed by the estimator's place in the registry (labels read
    "name (params)"), so an estimator keeps its colour in every view whatever else is
    selected. RS-GRPO variants take a sequential colour from their β (``beta_colour``)."""
    from plotly.colors import qualitative

    from theory import list_estimators

    palette = qualitative.Plotly + qualitative.Dark24
    registry = list(list_estimators())
    taken: set[int] = set()
    colours: dict[str, str] = {}
    for label in dict.fromkeys(labels):
        beta = beta_of(label)
        if beta is not None:
            colours[label] = beta_colour(beta)
            continue
        base = str(label).split(" (")[0]
        index = registry.index(base) if base in registry else len(registry)
        while index in taken:
            index = len(registry) + len(taken) if index < len(registry) else index + 1
        taken.add(index)
        colours[label] = palette[index % len(palette)]
    return colours


def legend_order(labels) -> list[str]:
    """Labels in first-seen order, except that RS-GRPO variants are sorted by β."""
    labels = list(dict.fromkeys(labels))
    betas = sorted((beta_of(l), l) for l in labels if beta_of(l) is not None)
    it = iter(l for _, l in betas)
    return [next(it) if beta_of(l) is not None else l for l in labels]


def hex_to_rgba(colour: str, alpha: float) -> str:
    """'#rrggbb' or 'rgb(r, g, b)' (plotly's sampled scales) with an alpha channel."""
    if colour.startswith("rgb("):
        r, g, b = (float(v) for v in colour[4:-1].split(","))
        return f"rgba({r:.0f},{g:.0f},{b:.0f},{alpha})"
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def with_traces(fig, traces: list[dict], frames: list[dict] | None = None):
    """``fig`` (its layout, built and validated by plotly) plus many plain-dict traces and frames,
    without plotly's per-property validation of those (``_validate=False``, the switch plotly's
    own constructor exposes). Validating ~300 animation traces took ~0.5 s per figure on the
    dev box, 50x the rest; the traces here are built by this module and checked by the tests."""
    import plotly.graph_objects as go

    spec = fig.to_dict()
    spec["data"] = list(spec.get("data", [])) + traces
    if frames is not None:
        spec["frames"] = frames
    return go.Figure(spec, _validate=False)


def axis_names(index: int) -> tuple[str, str]:
    """make_subplots' axis names of the index-th subplot (row-major): x/y, x2/y2, ..."""
    return ("x", "y") if index == 0 else (f"x{index + 1}", f"y{index + 1}")


def as_list(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def band_figure(
    metrics: pd.DataFrame,
    fields: list[tuple[str, str]],
    x: str = "step",
    cols: int = 3,
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
):
    """Mean ± one standard deviation over seeds of each field vs step, one line per estimator.

    ``bounds`` gives a field's possible range (e.g. (0, None) for an entropy): the band is drawn
    inside it, since mean − std of a non-negative quantity can fall below 0 although no seed does.
    The line (the mean) is never altered.
    """
    from plotly.subplots import make_subplots

    bounds = bounds or {}
    rows = math.ceil(len(fields) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[title for _, title in fields],
        horizontal_spacing=0.07,
        vertical_spacing=0.12 if rows > 1 else 0.0,
    )
    colours = colour_map(metrics["estimator"])
    order = legend_order(metrics["estimator"])
    traces = []
    for i, (field, _) in enumerate(fields):
        r, c = divmod(i, cols)
        xaxis, yaxis = axis_names(i)
        stats = metrics.groupby(["estimator", x], sort=False)[field].agg(["mean", "std"]).reset_index()
        stats["std"] = stats["std"].fillna(0.0)
        lo, hi = bounds.get(field, (None, None))
        parts = dict(tuple(stats.groupby("estimator", sort=False)))
        for label in order:
            part, colour = parts[label], colours[label]
            upper, lower = (part["mean"] + part["std"]).clip(upper=hi), (part["mean"] - part["std"]).clip(lower=lo)
            steps = as_list(part[x])
            traces.append(
                dict(
                    type="scatter",
                    x=steps + steps[::-1],
                    y=as_list(upper) + as_list(lower)[::-1],
                    fill="toself",
                    mode="lines",  # no markers: the band's vertices drew stray dots in the default colours
                    fillcolor=hex_to_rgba(colour, 0.18),
                    line=dict(width=0),
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=label,
                    xaxis=xaxis,
                    yaxis=yaxis,
                )
            )
            traces.append(
                dict(
                    type="scatter",
                    x=steps,
                    y=as_list(part["mean"]),
                    mode="lines",
                    name=label,
                    legendgroup=label,
                    showlegend=i == 0,
                    line=dict(color=colour),
                    xaxis=xaxis,
                    yaxis=yaxis,
                )
            )
        fig.update_xaxes(title_text=x, row=r + 1, col=c + 1)
    fig.update_layout(
        height=330 * rows + 60,
        margin=dict(l=40, r=20, t=70, b=60),
        legend=dict(orientation="h", y=-0.3 / rows, yanchor="top"),
    )
    return with_traces(fig, traces)


def curves_figure(metrics: pd.DataFrame, columns: list[str], title: str):
    """One panel per column: mean over seeds vs step, one line per estimator, band = ±1 std.
    The explorer draws its curves with the same ``band_figure``.
    """
    bounds = {c: (0.0, None) for c in columns if c == "entropy"}
    bounds.update({c: (0.0, 1.0) for c in columns if c in ("expected_reward", "prob_best", "mean_reward")})
    fig = band_figure(metrics, [(c, c) for c in columns], cols=len(columns), bounds=bounds)
    fig.update_layout(title={"text": title}, width=max(520, 430 * len(columns)))
    return fig


def table_figure(rows: list[dict], title: str):
    import plotly.graph_objects as go

    frame = pd.DataFrame(rows)
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in frame[c]] for c in frame.columns]
    fig = go.Figure(go.Table(header={"values": list(frame.columns)}, cells={"values": cells}))
    fig.update_layout(title=title, height=min(900, 120 + 28 * len(frame)))
    return fig


def bandit_figure(metrics: pd.DataFrame, title: str = "bandit"):
    return curves_figure(metrics, ["expected_reward", "entropy", "prob_best"], title)


def tabular_figure(metrics: pd.DataFrame, title: str = "tabular"):
    return curves_figure(metrics, ["mean_reward", "entropy", "pass_at_k", "frac_zero_adv_groups"], title)


def _title(name: str, result: dict) -> str:
    verdict = (
        "holds" if result["holds"] else ("false as printed (erratum)" if result.get("erratum") else "does not hold")
    )
    return f"{name}: {result.get('claim', '')} — {verdict}"


def prop1_figure(name: str, result: dict):
    import plotly.graph_objects as go

    frame = pd.DataFrame(result["table"])
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=frame.eta, y=frame.max_abs_residual_over_eta2, name="max |residual|/η²", mode="lines+markers")
    )
    fig.add_trace(
        go.Scatter(x=frame.eta, y=frame.max_abs_residual_over_eta, name="max |residual|/η", mode="lines+markers")
    )
    fig.update_layout(title=_title(name, result), xaxis_type="log", yaxis_type="log", xaxis_title="η")
    return fig


def thm1_figure(name: str, result: dict):
    import plotly.graph_objects as go

    frame = pd.DataFrame(result["table"])
    fig = go.Figure(go.Scatter(x=frame.finite_difference, y=frame.score_function, mode="markers", name="instances"))
    fig.update_layout(
        title=_title(name, result), xaxis_title="central finite difference", yaxis_title="score-function formula"
    )
    return fig


def lemma_figure(name: str, result: dict):
    """Exact one-step change of π(A*) against β (one line per instance, at the learning rate in ``curves``)."""
    import plotly.graph_objects as go

    frame = pd.DataFrame(result.get("curves") or [])
    if frame.empty:
        return table_figure(result["table"], _title(name, result))
    fig = go.Figure()
    for instance, part in frame.groupby("instance"):
        fig.add_trace(go.Scatter(x=part.beta, y=part.change, name=f"instance {instance}", mode="lines"))
    fig.add_hline(y=0, line_dash="dot")
    fig.update_layout(
        title=_title(name, result),
        xaxis_type="log",
        xaxis_title="β",
        yaxis_title=f"π'(a*) − π(a*), η = {result.get('curve_lr', '')}",
    )
    return fig


def _scatter_with_diagonal(frame: pd.DataFrame, x: str, y: str, group: str, labels: dict, title: str, xt: str, yt: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    for key, part in frame.groupby(group):
        fig.add_trace(
            go.Scatter(x=part[x], y=part[y], mode="markers", marker={"size": 4}, name=labels.get(key, str(key)))
        )
    lo, hi = float(frame[[x, y]].min().min()), float(frame[[x, y]].max().max())
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="equal", line={"dash": "dot", "color": "grey"}))
    fig.update_layout(title=title, xaxis_title=xt, yaxis_title=yt)
    return fig


def thm2_figure(name: str, result: dict):
    frame = pd.DataFrame(result.get("points") or [])
    if frame.empty:
        return table_figure(result["table"], _title(name, result))
    return _scatter_with_diagonal(
        frame,
        "cov_mean",
        "cov_mvar",
        "assumption_1",
        {True: "Assumption 1 (literal) holds", False: "Assumption 1 violated"},
        _title(name, result),
        "Cov(log π, A_mean)",
        "Cov(log π, A_MVaR)",
    )


def thm3_figure(name: str, result: dict):
    frame = pd.DataFrame(result.get("points") or [])
    if frame.empty:
        return table_figure(result["table"], _title(name, result))
    return _scatter_with_diagonal(
        frame,
        "cov_sf_g1",
        "cov_sf_g2",
        "pair",
        {},
        _title(name, result),
        "Cov(SF, g₁(R)) (steeper above F⁻¹(β))",
        "Cov(SF, g₂(R)) (printed claim: above the diagonal)",
    )


def claim_figure(name: str, result: dict, figure=None):
    """The natural picture of one claim's result: curves for a training run, else the claim's own
    ``figure`` (its registry entry's, ``(name, result) -> figure``), else a table. The caller
    passes the registry's figure, so this module never imports the claims that import it."""
    metrics = result.get("metrics")
    if isinstance(metrics, pd.DataFrame):
        if "expected_reward" in metrics:
            return bandit_figure(metrics, _title(name, result))
        return tabular_figure(metrics, _title(name, result))
    if figure is not None:
        return figure(name, result)
    return table_figure(result["table"], _title(name, result))


def save_figure(fig, path_without_suffix: str) -> list[str]:
    """Writes .html, and .png where kaleido is available; returns the written paths."""
    written = [path_without_suffix + ".html"]
    # "directory": one shared plotly.min.js next to the figures, so they open offline.
    fig.write_html(written[0], include_plotlyjs="directory")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return written
    try:
        fig.write_image(path_without_suffix + ".png")
        written.append(path_without_suffix + ".png")
    except Exception:  # a kaleido without its browser: HTML is the deliverable
        pass
    return written
