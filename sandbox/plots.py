"""Plotly figures of sandbox results (HTML always; PNG only where kaleido is installed)."""

from __future__ import annotations

import pandas as pd

__all__ = [
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


def curves_figure(metrics: pd.DataFrame, columns: list[str], title: str):
    """One panel per column: mean over seeds vs step, one line per estimator, band = ±1 std.

    Drawn by the explorer's band figure so the CLI's HTML and the app show the same picture
    (one plot module for the job); imported lazily because app_lib itself imports the sandbox.
    """
    from app_lib.figures import band_figure

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


def claim_figure(name: str, result: dict):
    """The natural picture of one claim's result: the registry's figure function, else curves or a table."""
    from .claims import get_claim

    metrics = result.get("metrics")
    if isinstance(metrics, pd.DataFrame):
        if "expected_reward" in metrics:
            return bandit_figure(metrics, _title(name, result))
        return tabular_figure(metrics, _title(name, result))
    figure = get_claim(name).figure
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
