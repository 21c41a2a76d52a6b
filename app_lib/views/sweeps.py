"""Sweeps: a final metric of the tabular simulator against RS-GRPO's β, the bundle size B, α or ω."""

from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from app_lib import state
from app_lib.choices import build_choices, is_quantile_band
from app_lib.figures_paper import sweep_figure
from app_lib.ui import chart, downloads, explain, show_errors, user_words
from app_lib.views import Context, register_view
from app_lib.views.tabular import RISK_FIELDS, risk_levels_valid, run_all

#: parameter -> (Knobs field, the values offered, the default selection, which estimators it moves)
PARAMETERS = {
    "RS-GRPO β": ("rs_betas", (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0), (0.5, 1.0, 2.0, 4.0, 8.0), "rs_grpo"),
    "bundle size B": ("bundle_size", (1, 2, 4, 5, 8, 10), (1, 2, 4, 5, 8, 10), "quantile band"),
    "α (lower quantile level)": ("alpha", (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6), (0.1, 0.2, 0.3, 0.4), "quantile band"),
    "ω (lower-tail weight)": ("omega", (0.0, 0.25, 0.5, 1.0, 2.0, 3.0), (0.0, 0.5, 1.0, 2.0), "quantile band"),
}
METRICS = {
    "entropy": "policy entropy H(π)",
    "pass_at_k": "pass@k",
    "mean_reward": "mean reward",
    "mvar": "MVaR of bundle scores",
    "cov_logp_adv": "Cov(log π, A)",
}


@register_view(
    "sweeps",
    "6 · Sweeps",
    order=60,
    sidebar=("estimators", "alpha", "beta", "omega", "bundle_size", "k", "group_size"),  # β values: its own list
)
def render(ctx: Context) -> None:
    st.header("Sweeps: a final metric against one parameter")
    st.caption(
        "Runs the tabular simulator (default problem: P = 40 prompts, M = 16 responses, sidebar G, k, α, β, ω) "
        "once per parameter value and estimator (each run cached). In the training curves, with several "
        "estimators the colour is the estimator and the dash and marker the parameter value; with one estimator "
        "the colour is the value (RS-GRPO's β: dark = large β, as in every view)."
    )
    c1, c2, c3, c4 = st.columns([2, 3, 2, 2])
    parameter = state.selectbox(c1, "parameter", list(PARAMETERS), key="sweep_param")
    field, offered, default, moves = PARAMETERS[parameter]
    values = state.multiselect(c2, "values", offered, list(default), key=f"sweep_values_{field}")
    metric = state.selectbox(c3, "metric", list(METRICS), key="sweep_metric", format_func=METRICS.get)
    steps = state.slider(c4, "steps", 10, 400, 150, 10, key="sweep_steps")
    seeds = state.slider(c4, "seeds", 1, 8, 3, 1, key="sweep_seeds")
    names = ("rs_grpo",) if moves == "rs_grpo" else tuple(n for n in ctx.names if is_quantile_band(n))
    if not names:
        st.info(
            f"{parameter} moves the quantile-band estimators (riskpo, riskpo_seeking, rvar, cvar): select one in the "
            "sidebar."
        )
        return
    if not values:
        st.info("Pick at least one value.")
        return
    settings = dict(
        group_size=ctx.group_size,
        steps=int(steps),
        k=ctx.knobs.k,
        risk_alpha=ctx.knobs.alpha,
        risk_beta=ctx.knobs.beta,
        risk_omega=ctx.knobs.omega,
        log_every=max(1, int(steps) // 100),
    )
    settings, no_risk = risk_levels_valid(settings)
    if no_risk and metric in RISK_FIELDS:
        st.warning(no_risk, icon="⚠️")
        return
    try:
        from sandbox import TabularConfig

        TabularConfig(**settings)
    except ValueError as err:
        st.error(f"Invalid sweep settings: {user_words(err)}", icon="⚠️")
        return
    finals, curves, errors = [], [], []
    bar = st.progress(0.0, text="sweep")
    for i, value in enumerate(sorted(values)):
        bar.progress(i / len(values), text=f"sweep: {parameter} = {value:g} ({i + 1}/{len(values)})")
        knobs = dataclasses.replace(ctx.knobs, **{field: (float(value),) if field == "rs_betas" else value})
        choices, build_errors = build_choices(names, knobs, mode="bundled")
        errors += [f"{parameter} = {value:g}: {e}" for e in build_errors]
        metrics, run_errors = run_all(choices, settings, int(seeds), f"{parameter} = {value:g}")
        errors += [f"{parameter} = {value:g}: {e}" for e in run_errors]
        if metrics.empty or metric not in metrics:
            continue
        metrics["estimator"] = metrics["estimator"].str.split(" \\(").str[0]  # one line per estimator across values
        last = (
            metrics[metrics["step"] == metrics["step"].max()]
            .groupby("estimator", sort=False)[metric]
            .agg(["mean", "std"])
        )
        finals.append(last.fillna(0.0).reset_index().assign(value=float(value)))
        curve = metrics.groupby(["estimator", "step"], sort=False)[metric].mean().rename("mean").reset_index()
        curves.append(curve.assign(value=float(value)))
    bar.empty()
    show_errors(errors)
    if not finals:
        st.info("No run succeeded with these values.")
        return
    final, curve = pd.concat(finals, ignore_index=True), pd.concat(curves, ignore_index=True)
    title = METRICS[metric].replace("pass@k", f"pass@{ctx.knobs.k}")
    fig = sweep_figure(
        final, parameter, metric, title, curve, log_x=field == "rs_betas", beta_values=field == "rs_betas"
    )
    chart(st, fig, "fig_sweep")
    st.dataframe(
        final.rename(columns={"value": parameter, "mean": f"final {metric}", "std": "std over seeds"}),
        hide_index=True,
        key="table_sweep",
    )
    explain(
        "RS-GRPO: larger β shifts weight to hard prompts and helps pass@k, up to a point (Lemma 4); RiskPO: bundling "
        "(B > 1) and a heavier lower tail (ω, α) keep entropy higher (Thm 2).",
        "the tabular simulator's default problem; every other setting as in the sidebar.",
        "look for monotone trends on the left and for where they flatten: that is the range worth tuning.",
    )
    downloads(f"sweep_{field}_{metric}", final, fig)
